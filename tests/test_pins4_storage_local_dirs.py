"""Reading or deleting a local key never makes directories (``local.key_dir`` creates
only when asked, for a write): a delete of an object that is gone, or a read of it, leaves
the volume as it was, and does not need a volume that can be written to."""

import os

import pytest

from portal import storage
from tests.conftest import apply_storage

GONE = "ab/cd/gone.part"


@pytest.fixture
def temp_root(settings, data_dir):
    apply_storage(settings, "local", data_dir)
    return data_dir / "temp"


def test_deleting_a_key_whose_directory_is_gone_makes_no_directory(temp_root):
    result = storage.delete_temp([GONE])

    assert result.deleted == [GONE]
    assert not os.path.exists(temp_root / "ab")


def test_reading_a_key_whose_directory_is_gone_makes_no_directory(temp_root):
    with pytest.raises(FileNotFoundError):
        b"".join(storage.iter_temp(GONE))

    assert not os.path.exists(temp_root / "ab")
