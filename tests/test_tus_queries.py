"""The statements a tus PATCH costs: one whole part, in the middle of an upload, within a
budget (transaction control, which PostgreSQL logs as statements of their own, aside)."""

import contextlib
import re

import pytest
from django.db import connection

from tests.api_helpers import make_token
from tests.tus_helpers import Tus

CHUNK = 64 * 1024
# The token; the upload with its session; its parts in; whether the part's range holds a
# recorded part; record the part (insert it, count it: the count locks the session).
# PostgreSQL adds the upload's advisory lock and unlock.
PATCH_BUDGET = 6
_CONTROL = re.compile(r"\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE SAVEPOINT)\b", re.I)


@pytest.fixture
def tus(client, user, portal_storage, settings):
    settings.PORTAL_CHUNK_SIZE = CHUNK
    return Tus(client, make_token(user))


@contextlib.contextmanager
def statements():
    """The statements this thread's connection runs in the block (a request resets
    ``connection.queries``, so ``CaptureQueriesContext`` would see none of them)."""
    sql = []

    def record(execute, statement, params, many, context):
        if not _CONTROL.match(statement):
            sql.append(statement)
        return execute(statement, params, many, context)

    with connection.execute_wrapper(record):
        yield sql


@pytest.mark.parametrize("part", [1, 2])
def test_a_patch_of_one_whole_part_stays_within_its_statement_budget(tus, part):
    data = bytes(range(256)) * (3 * CHUNK // 256)
    path = tus.start(len(data))
    for number in range(1, part):
        assert tus.patch(path, (number - 1) * CHUNK, data[:CHUNK]).status_code == 204

    with statements() as sql:
        response = tus.patch(path, (part - 1) * CHUNK, data[:CHUNK])

    assert response.status_code == 204, response.content
    assert int(response["Upload-Offset"]) == part * CHUNK == tus.offset(path)
    budget = PATCH_BUDGET + (2 if connection.vendor == "postgresql" else 0)
    assert len(sql) <= budget, "\n".join(sql)
