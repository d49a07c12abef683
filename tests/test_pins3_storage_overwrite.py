"""Saving to a name that exists replaces the object under that name, on local disk as on
S3 (``file_overwrite``): final keys are derived from the file's id and day
(``storage.new_final_key``), so a finalize that runs again for the same file writes the
same name, and the key recorded must be the one the object is under, with no orphan left
beside it (``boot.settings._local_storage``: ``allow_overwrite``)."""

import datetime as dt
import io

import pytest
from django.core.files.storage import storages

from portal import storage
from tests.conftest import apply_storage

FILE_ID = "0f0e0d0c-0b0a-0908-0706-050403020100"
NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


def test_writing_a_final_object_again_keeps_its_key_and_replaces_its_bytes(any_storage):
    """A retried finalize of one file: the second object is under the first one's key and
    holds the second bytes; nothing else is in the final storage."""
    first = storage.write_final(iter([b"first " * 1000]), file_id=FILE_ID, now=NOW)
    again = storage.write_final(iter([b"again!" * 1500]), file_id=FILE_ID, now=NOW)

    assert first.key == again.key == storage.new_final_key(FILE_ID, now=NOW)
    assert again.size == 9000
    assert b"".join(storage.backend().read(storage.final_storage(), again.key, 4096)) == (
        b"again!" * 1500
    )
    assert [o.key for o in storage.list_objects(storage.final_storage())] == [again.key]


@pytest.mark.parametrize("alias", ["default", "portal_temp", "portal_final"])
def test_every_local_storage_the_settings_define_overwrites_a_name(settings, data_dir, alias):
    """Django's ``FileSystemStorage`` would otherwise save under a new name of its own."""
    apply_storage(settings, "local", data_dir)
    store = storages[alias]
    assert store.save("ab/name", io.BytesIO(b"one")) == "ab/name"
    assert store.save("ab/name", io.BytesIO(b"two, longer")) == "ab/name"
    with store.open("ab/name") as handle:
        assert handle.read() == b"two, longer"
    assert store.listdir("ab") == ([], ["name"])
