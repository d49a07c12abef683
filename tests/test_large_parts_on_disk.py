"""Parts larger than a read window or a write block, at offsets off a page boundary, on
local disk: what lands in the file and what finalize checks (``portal.storage.streams``
writes a part in 1 MiB blocks; ``local_assembly.hash_range`` reads 8 MiB windows that must
start on a page)."""

import errno
import os

import pytest

from portal import storage
from portal.models import UploadSession
from portal.storage import local_assembly, local_in_place, streams
from tests.api_helpers import Api, make_token, sha256
from tests.conftest import apply_storage

# Allowed, yet no multiple of a page: part 2 starts 1,664 bytes past one and spans two
# hash windows; each part spans ten write blocks.
CHUNK = 10_000_000


@pytest.fixture
def api(client, user, settings, data_dir):
    apply_storage(settings, "local", data_dir)
    return Api(client, make_token(user))


def refuse_link(*args, **kwargs):
    raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))


def final_bytes(session_id):
    row = UploadSession.objects.select_related("file").get(pk=session_id)
    with open(storage.final_storage().path(row.file.storage_key), "rb") as handle:
        return handle.read()


@pytest.mark.parametrize(
    ("link", "order"),
    [
        (False, [1, 2, 3]),  # a refused link: copied and checked part by part at finalize
        (True, [2, 3, 1]),  # parts 2 and 3 caught up from the assembly file
        (True, [1, 2, 3]),  # hashed on the way in: finalize links without a read
    ],
)
def test_large_parts_at_unaligned_offsets_finalize_to_the_bytes_sent(api, monkeypatch, link, order):
    assert CHUNK % os.sysconf("SC_PAGE_SIZE") and CHUNK > local_assembly.HASH_WINDOW_BYTES
    assert CHUNK > 2 * streams.BLOCK_BYTES
    if not link:
        monkeypatch.setattr(local_in_place.os, "link", refuse_link)
    data = os.urandom(2 * CHUNK + 4099)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=order)

    response = api.finalize(session)

    assert response.status_code == 200, response.content
    assert response.json()["file"]["sha256"] == sha256(data)
    assert final_bytes(session) == data
