"""Pins (weak-pin review 6, storage area): local disk where the suite's settings let a
careless change pass: the mode of a file or directory made with no configured mode."""

import io
import os
import stat
import uuid

import pytest

from portal import storage
from tests.conftest import apply_storage

SESSION = uuid.UUID("5e551011-0000-4000-8000-0000000000a6")


@pytest.fixture
def no_umask():
    old = os.umask(0)
    yield
    os.umask(old)


def test_without_configured_modes_new_files_and_directories_get_the_create_modes(
    settings, data_dir, no_umask
):
    """With no modes configured files are created 0o666 and directories 0o777 (as Django's
    storage does): nothing chmods them afterwards, so narrower modes would lock readers out."""
    settings.FILE_UPLOAD_PERMISSIONS = None
    settings.FILE_UPLOAD_DIRECTORY_PERMISSIONS = None
    apply_storage(settings, "local", data_dir)
    part = storage.write_temp_part(
        io.BytesIO(b"own"), session_id=SESSION, part_number=1, max_bytes=3
    )
    with storage.backend().part_range(SESSION, 0, 4) as place:
        place.write(io.BytesIO(b"four"), max_bytes=4)
    final = storage.write_final([b"final"], file_id=SESSION)
    made = [
        data_dir / "temp" / part.key,
        data_dir / "temp" / storage.assembly_key(SESSION),
        data_dir / "final" / final.key,
    ]
    assert [stat.S_IMODE(os.stat(path).st_mode) for path in made] == [0o666] * 3
    # Directories likewise: 0o777 less the umask, with no directory mode configured.
    shard = (data_dir / "temp" / part.key).parent
    assert stat.S_IMODE(os.stat(shard).st_mode) == 0o777


def test_a_file_mode_applies_without_a_directory_mode(settings, data_dir, no_umask):
    """The two modes are separate settings: a file mode alone still narrows every file
    the portal writes (the directories keep the create mode)."""
    settings.FILE_UPLOAD_PERMISSIONS = 0o640
    settings.FILE_UPLOAD_DIRECTORY_PERMISSIONS = None
    apply_storage(settings, "local", data_dir)
    part = storage.write_temp_part(
        io.BytesIO(b"own"), session_id=SESSION, part_number=1, max_bytes=3
    )
    final = storage.write_final([b"final"], file_id=SESSION)
    made = [data_dir / "temp" / part.key, data_dir / "final" / final.key]
    assert [stat.S_IMODE(os.stat(path).st_mode) for path in made] == [0o640] * 2
    assert stat.S_IMODE(os.stat(made[0].parent).st_mode) == 0o777
