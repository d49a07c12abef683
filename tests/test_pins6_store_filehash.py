"""Pins (weak-pin review 6, storage area): the file hash's catch-up where the suite's data
let a careless change pass: a look that finds parts, none of them next in line."""

import logging
import os

import pytest

from tests.api_helpers import Api, make_token, sha256
from tests.conftest import apply_storage
from tests.file_hash_helpers import saved

CHUNK = 64 * 1024


@pytest.fixture
def api(client, user, settings, data_dir):
    apply_storage(settings, "local", data_dir)
    return Api(client, make_token(user))


def test_a_catch_up_stops_quietly_when_the_parts_left_are_not_next(api, caplog):
    """After hashing parts 1-2 the catch-up looks again, sees only part 4 (3 is missing)
    and stops without a warning: a run with no next part is "nothing to do", not a failure."""
    data = os.urandom(4 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=[2, 4])
    with caplog.at_level(logging.WARNING, logger="portal.services.filehash"):
        api.upload(session, data, CHUNK, order=[1])
    assert saved(session) == (2, sha256(data[: 2 * CHUNK]))
    assert [r.getMessage() for r in caplog.records if r.name == "portal.services.filehash"] == []
    api.upload(session, data, CHUNK, order=[3])
    assert saved(session) == (4, sha256(data))
