"""The catch-up's byte budget (``filehash.CATCH_UP_BYTES``) on local disk, to the byte: a
request keeps hashing parts while fewer than that many bytes were read back, so a budget of
one part and a byte takes in two parts, and one of exactly one part takes in one."""

import os

import pytest

from portal.services import filehash
from tests.api_helpers import sha256
from tests.file_hash_helpers import saved
from tests.storage_helpers import CHUNK


@pytest.fixture
def api(local_api):
    """``local_api`` under the name this test (and older imports of it) use."""
    return local_api


@pytest.mark.parametrize(("budget", "hashed"), [(CHUNK + 1, 3), (CHUNK, 2), (2 * CHUNK, 3)])
def test_a_catch_up_reads_while_under_its_budget(api, monkeypatch, budget, hashed):
    monkeypatch.setattr(filehash, "CATCH_UP_BYTES", budget)
    data = os.urandom(5 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=[2, 3, 4, 5])
    assert saved(session) == (0, None)

    api.upload(session, data, CHUNK, order=[1])  # hashed on its way in, then the budget

    assert saved(session) == (hashed, sha256(data[: hashed * CHUNK]))
    assert api.finalize(session).json()["file"]["sha256"] == sha256(data)
