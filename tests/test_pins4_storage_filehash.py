"""The catch-up's byte budget is one budget for the whole request (``filehash.catch_up``):
a second run of parts gets only what the first run left of it, not a fresh budget."""

import os

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.services import filehash
from portal.services.part_sql import P, S
from tests.api_helpers import Api, make_token, sha256
from tests.conftest import apply_storage
from tests.file_hash_helpers import saved

CHUNK = 64 * 1024


@pytest.fixture
def api(client, user, settings, data_dir):
    apply_storage(settings, "local", data_dir)
    return Api(client, make_token(user))


def test_a_second_run_gets_only_what_the_first_run_left_of_the_budget(api, monkeypatch):
    """Runs of two parts, a budget of three: the first run reads parts 2-3, the second
    one part more (4), so a request reads back at most about its budget, not a budget a run."""
    monkeypatch.setattr(filehash, "RUN_PARTS", 2)
    monkeypatch.setattr(filehash, "CATCH_UP_BYTES", 3 * CHUNK)
    data = os.urandom(6 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=[2, 3, 4, 5, 6])
    assert saved(session) == (0, None)

    api.upload(session, data, CHUNK, order=[1])  # hashed on its way in, then 2-3, then 4

    assert saved(session) == (4, sha256(data[: 4 * CHUNK]))
    assert api.finalize(session).json()["file"]["sha256"] == sha256(data)


def test_a_request_whose_budget_is_spent_stops_looking_for_parts(api, monkeypatch):
    """Parts still wait when the budget runs out: the request looks once more (after it
    moved the hash) and stops; it does not keep claiming and letting go until its seconds
    run out, holding the client's response for nothing."""
    monkeypatch.setattr(filehash, "CATCH_UP_BYTES", 2 * CHUNK)
    data = os.urandom(5 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=[2, 3, 4, 5])

    with CaptureQueriesContext(connection) as queries:
        api.upload(session, data, CHUNK, order=[1])

    sql = [query["sql"] for query in queries.captured_queries]
    assert saved(session) == (3, sha256(data[: 3 * CHUNK]))
    assert len([q for q in sql if f"p.{P.part_number} > s.{S.hashed_parts}" in q]) == 2
    assert len([q for q in sql if q.startswith("UPDATE") and "hash_claimed_until" in q]) == 2
