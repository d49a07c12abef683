"""Pins for the upload area, fourth round (issue #31): the token's ``last_used_at`` write at
the edge of its one-minute resolution."""

import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.models import ApiToken
from tests.api_helpers import Api, make_token

NO_SESSION = "00000000-0000-0000-0000-000000000000"


def token_updates(queries):
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]


def test_a_token_used_exactly_a_minute_later_costs_no_write(client, user):
    """A use exactly one minute after the recorded one is still fresh: no UPDATE on the
    token row (thousands of parts must not be thousands of writes), and the time stays."""
    api = Api(client, make_token(user))
    with time_machine.travel("2030-01-01 12:00:00Z", tick=False):
        api.status(NO_SESSION)
    first = ApiToken.objects.get().last_used_at
    with (
        time_machine.travel("2030-01-01 12:01:00Z", tick=False),
        CaptureQueriesContext(connection) as queries,
    ):
        assert api.status(NO_SESSION).status_code == 404
    assert token_updates(queries) == []
    assert ApiToken.objects.get().last_used_at == first
