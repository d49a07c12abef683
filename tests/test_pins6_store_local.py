"""Pins (weak-pin review 6, storage area): local disk where the suite's settings let a
careless change pass: the mode of a file made with no configured mode."""

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


def test_without_a_configured_mode_new_files_get_0o666_less_the_umask(settings, data_dir, no_umask):
    """With FILE_UPLOAD_PERMISSIONS = None a file is created 0o666 (as Django's storage
    does): nothing chmods it afterwards, so a narrower create mode would lock readers out."""
    settings.FILE_UPLOAD_PERMISSIONS = None
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
