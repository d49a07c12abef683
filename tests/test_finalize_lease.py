"""Which assembly ``portal_finalize`` takes over first (``portal.services.finalize.lease``),
on the run's database."""

from datetime import timedelta

import time_machine
from django.utils import timezone

from portal.services.finalize import lease
from tests.api_helpers import Api, make_token


def test_the_assembly_whose_lease_ran_out_first_is_taken_over_first(client, user, portal_storage):
    api, start = Api(client, make_token(user)), timezone.now()
    sessions = [api.start(b"x" * 10, 10)["id"] for _ in range(3)]
    for minutes, session in zip((2, 0, 1), sessions, strict=True):
        api.upload(session, b"x" * 10, 10)
        with time_machine.travel(start + timedelta(minutes=minutes)):
            lease.begin(session)

    with time_machine.travel(start + timedelta(hours=1)):
        taken = [lease.claim_expired() for _ in range(4)]

    assert [str(pk) if pk else None for pk in taken] == [*(sessions[i] for i in (1, 2, 0)), None]
