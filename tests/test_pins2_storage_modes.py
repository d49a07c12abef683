"""``FILE_UPLOAD_PERMISSIONS`` and ``FILE_UPLOAD_DIRECTORY_PERMISSIONS`` hold for every
file and directory local storage makes, whatever the umask: the final file when it is a
link to the assembly file (the mode of finalize's time, even if the parts were written
under another), the final file when it is a copy (two volumes), a temp object of its own,
and the directories above the final file."""

import io
import os
import stat

import pytest

from portal import storage
from tests.api_helpers import Api, make_token, sha256
from tests.conftest import apply_storage
from tests.storage_helpers import CHUNK, assembly_path, final_path

SESSION = "0f0e0d0c-0b0a-0908-0706-050403020100"


@pytest.fixture(autouse=True)
def umask_022():
    """A umask that takes bits the settings below give: only a chmod gets them back."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def modes(settings):
    settings.FILE_UPLOAD_PERMISSIONS = 0o660
    settings.FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o770


def mode(path):
    return oct(stat.S_IMODE(os.stat(path).st_mode))


def test_a_linked_final_file_gets_the_mode_configured_at_finalize(client, user, settings, data_dir):
    settings.FILE_UPLOAD_PERMISSIONS = 0o600
    apply_storage(settings, "local", data_dir)
    api = Api(client, make_token(user))
    data = os.urandom(2 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK)
    assert mode(assembly_path(session)) == oct(0o600)
    settings.FILE_UPLOAD_PERMISSIONS = 0o640  # the operator changed it meanwhile
    settings.FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o750
    apply_storage(settings, "local", data_dir)

    finalized = api.finalize(session)

    assert finalized.status_code == 200, finalized.content
    path = final_path(session)
    assert os.stat(path).st_nlink >= 1 and mode(path) == oct(0o640)
    day = os.path.dirname(path)
    for directory in (day, os.path.dirname(day), os.path.dirname(os.path.dirname(day))):
        assert mode(directory) == oct(0o750), directory


def test_a_copied_final_file_gets_the_configured_mode(client, user, modes, volumes):
    api = Api(client, make_token(user))
    data = os.urandom(2 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK)

    finalized = api.finalize(session)

    assert finalized.status_code == 200, finalized.content
    assert finalized.json()["file"]["sha256"] == sha256(data)
    path = final_path(session)
    assert os.stat(path).st_nlink == 1  # a copy, not a link
    assert mode(path) == oct(0o660)
    assert mode(os.path.dirname(path)) == oct(0o770)


def test_a_temp_object_of_its_own_gets_the_configured_mode(modes, settings, data_dir):
    apply_storage(settings, "local", data_dir)
    stored = storage.write_temp_part(
        io.BytesIO(b"tail"), session_id=SESSION, part_number=2, max_bytes=10
    )
    path = storage.temp_storage().path(stored.key)
    assert mode(path) == oct(0o660)
    assert mode(os.path.dirname(path)) == oct(0o770)
    with storage.backend().part_range(SESSION, 0, 10) as place:
        place.write(io.BytesIO(b"0123456789"), max_bytes=10)
        copied = place.copy_to_temp(4, part_number=1)
    assert mode(storage.temp_storage().path(copied.key)) == oct(0o660)
    assert b"".join(storage.iter_temp(copied.key)) == b"0123"
