"""Pins for the storage area (issue #31, ``tests/mutant_area_store.py``): the storage
interface at its edges on local disk: keys, deletes, modes, byte ranges and their locks,
blocks given back, copies with and without the kernel's help, assembly. (S3, listings,
the sha256 state and named locks: their own test files.)"""

import errno
import hashlib
import io
import os
import shutil
import stat
import tempfile
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from portal import storage
from portal.storage import local_in_place, streams
from tests.conftest import apply_storage

SESSION = uuid.UUID("5e551011-0000-4000-8000-000000000001")
FILE = uuid.UUID("f11e0000-0000-4000-8000-000000000002")
MIB = 1024 * 1024
NOW = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)


@pytest.fixture
def local(settings, data_dir):
    apply_storage(settings, "local", data_dir)
    return data_dir


@pytest.fixture
def umask_077():
    old = os.umask(0o077)  # takes bits every configured mode below has
    yield
    os.umask(old)


def refuse_link(*_args, **_kwargs):
    raise OSError(errno.EPERM, "hard links not supported")


def in_place(chunks, session=SESSION):
    """``chunks`` written one after another into the session's file: their sources."""
    sources, offset = [], 0
    for number, chunk in enumerate(chunks, 1):
        with storage.backend().part_range(session, offset, len(chunk)) as place:
            stored = place.write(io.BytesIO(chunk), max_bytes=len(chunk))
        sha = hashlib.sha256(chunk).hexdigest()
        sources.append(storage.part_source(number, len(chunk), sha, stored.key, offset))
        offset += len(chunk)
    return sources


def assembly_path(data_dir, session=SESSION):
    return data_dir / "temp" / storage.assembly_key(session)


def final_path(data_dir):
    return data_dir / "final" / storage.new_final_key(FILE, now=NOW)


# --- errors, keys and deletes (portal/storage/__init__.py, local.py) ----------------------


@pytest.mark.parametrize(
    ("code", "full"), [(errno.EDQUOT, True), (errno.ENOSPC, True), (errno.EIO, False)]
)
def test_a_quota_or_a_full_disk_is_storage_full_any_other_error_an_outage(
    local, monkeypatch, code, full
):
    def failing(*_args):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "pwrite", failing)
    with pytest.raises(storage.StorageUnavailable) as failure:
        storage.write_temp_part(
            io.BytesIO(b"x" * 10), session_id=SESSION, part_number=1, max_bytes=10
        )
    assert isinstance(failure.value, storage.StorageFull) is full
    assert str(failure.value) == f"OSError: {os.strerror(code)}"
    monkeypatch.undo()
    assert list(storage.list_temp()) == []


def test_the_listing_by_age_leaves_out_an_object_modified_exactly_at_the_cut(local):
    key = storage.write_temp_part(
        io.BytesIO(b"x"), session_id=SESSION, part_number=1, max_bytes=1
    ).key
    cut = 1_700_000_000
    os.utime(local / "temp" / key, (cut, cut))
    at = datetime.fromtimestamp(cut, UTC)
    assert [item.key for item in storage.list_temp(older_than=at)] == []
    later = at + timedelta(microseconds=1)
    assert [item.key for item in storage.list_temp(older_than=later)] == [key]


def test_deleting_a_key_twice_in_one_call_counts_it_once(local):
    key = storage.write_temp_part(
        io.BytesIO(b"x"), session_id=SESSION, part_number=1, max_bytes=1
    ).key
    result = storage.delete_temp([key, "zz/none", key, "zz/none"])
    assert result.deleted == [key, "zz/none"]
    assert result.failed == {}


def test_free_bytes_are_those_of_the_volume_asked_about(local, settings, small_volume):
    temp = small_volume(local / "temp", 3 * MIB)
    assert storage.free_bytes("temp") == shutil.disk_usage(temp).free <= 3 * MIB
    assert storage.free_bytes("final") > 100 * MIB  # the disk under data_dir


def test_final_keys_are_year_month_day_and_the_file_id():
    assert storage.new_final_key(FILE, now=NOW) == f"2026/03/04/{FILE.hex}"


def test_assembly_keys_name_their_session_and_nothing_else_does():
    assert storage.assembly_session(storage.assembly_key(SESSION)) == SESSION
    assert storage.assembly_session(storage.new_temp_key(SESSION, 1)) is None
    assert storage.assembly_session("ab/not-a-session-parts") is None
    assert storage.assembly_session(f"ab/{SESSION.hex}") is None


def test_deleting_a_missing_local_file_through_the_storage_api_is_fine(local):
    storage.temp_storage().delete("ab/missing")
    storage.final_storage().delete("2026/01/01/missing")
    assert list(storage.list_temp()) == []


# --- file modes (local.py, local_walk.py, local_in_place.py) -------------------------------


@pytest.mark.parametrize("link", [True, False], ids=["link", "copy"])
def test_files_and_directories_get_the_configured_modes(
    local, settings, monkeypatch, umask_077, link
):
    stores = {alias: dict(spec) for alias, spec in settings.STORAGES.items()}
    for alias, file_mode in ((storage.TEMP_ALIAS, 0o660), (storage.FINAL_ALIAS, 0o640)):
        modes = {"file_permissions_mode": file_mode, "directory_permissions_mode": 0o750}
        stores[alias] = {**stores[alias], "OPTIONS": {**stores[alias]["OPTIONS"], **modes}}
    settings.STORAGES = stores
    if not link:
        monkeypatch.setattr(local_in_place.os, "link", refuse_link)
    own = storage.write_temp_part(
        io.BytesIO(b"own"), session_id=SESSION, part_number=9, max_bytes=3
    )
    sources = in_place([b"abc", b"de"])
    storage.assemble_final(sources, file_id=FILE, now=NOW)

    def mode(path):
        return oct(stat.S_IMODE(os.stat(path).st_mode))

    assert mode(local / "temp" / own.key) == oct(0o660)
    assert mode(final_path(local)) == oct(0o640)
    assert mode(final_path(local).parent) == oct(0o750)
    assert mode(final_path(local).parent.parent.parent) == oct(0o750)
    assert final_path(local).read_bytes() == b"abcde"


# --- ranges of the assembly file (local_in_place.py, local_backend.py) ---------------------


def busy(offset, size, session=SESSION):
    try:
        with storage.backend().part_range(session, offset, size):
            return False
    except storage.RangeBusy:
        return True


@pytest.mark.parametrize("ofd", [True, False], ids=["ofd", "named locks"])
def test_a_held_range_stops_only_what_overlaps_it(local, monkeypatch, ofd):
    import fcntl

    if not ofd:
        if connection.vendor == "postgresql":
            pytest.skip("advisory locks: one session holds a lock any number of times")
        monkeypatch.delattr(fcntl, "F_OFD_SETLK")
    local_in_place.available.cache_clear()
    try:
        with storage.backend().part_range(SESSION, 10, 10):
            assert busy(10, 10)
            assert not busy(20, 10) and not busy(0, 10)
            assert busy(15, 10) is ofd  # named locks know a range by its offset only
        assert not busy(10, 10)
        with storage.backend().part_range(SESSION, 100, 0):
            assert not busy(200, 10) and not busy(0, 10)
    finally:
        local_in_place.available.cache_clear()


def test_a_failed_write_gives_its_blocks_back_and_keeps_the_other_parts(local):
    parts = [os.urandom(MIB) for _ in range(3)]
    in_place(parts)
    path = assembly_path(local)
    with (
        storage.backend().part_range(SESSION, 3 * MIB, MIB) as place,
        pytest.raises(storage.TooLarge),
    ):
        place.write(io.BytesIO(os.urandom(MIB + 1)), max_bytes=MIB)
    assert path.read_bytes()[: 3 * MIB] == b"".join(parts)
    assert os.stat(path).st_blocks * 512 <= 3 * MIB + 64 * 1024


def test_a_request_that_did_not_make_the_file_leaves_it_when_abandoned(local):
    in_place([b"recorded"])
    with storage.backend().part_range(SESSION, 8, 4) as place:
        place.abandon()
    assert assembly_path(local).read_bytes() == b"recorded"
    with storage.backend().part_range(uuid.UUID(int=7), 0, 4) as place:
        place.abandon()
    assert not assembly_path(local, uuid.UUID(int=7)).exists()


def test_a_range_of_a_file_removed_meanwhile_gets_no_byte(local):
    with storage.backend().part_range(SESSION, 0, 4) as place:
        os.unlink(assembly_path(local))
        with pytest.raises(storage.StorageLinkRefused, match="0 names"):
            place.write(io.BytesIO(b"lost"), max_bytes=4)


def test_a_part_written_in_place_feeds_the_files_hash_only(local):
    file_hash = hashlib.sha256(b"head")
    with storage.backend().part_range(SESSION, 4, 6) as place:
        stored = place.write(
            io.BytesIO(b"tail!!"), max_bytes=6, file_hash=file_hash, own_hash=False
        )
    assert (stored.key, stored.offset, stored.size, stored.sha256) == (
        storage.assembly_key(SESSION),
        4,
        6,
        "",
    )
    assert file_hash.hexdigest() == hashlib.sha256(b"headtail!!").hexdigest()


@pytest.mark.parametrize("kernel", ["copy_file_range", "refused", "hidden"])
def test_a_tail_copied_out_of_its_range_is_exactly_its_bytes(local, monkeypatch, kernel):
    in_place([b"A" * 100])
    with storage.backend().part_range(SESSION, 200, 50) as place:
        place.write(io.BytesIO(b"C" * 50), max_bytes=50)
    if kernel == "refused":

        def refused(*_args):
            raise OSError(errno.EXDEV, "cross-device")

        monkeypatch.setattr(os, "copy_file_range", refused)
    elif kernel == "hidden":
        monkeypatch.delattr(os, "copy_file_range")
    tail = os.urandom(60)
    with storage.backend().part_range(SESSION, 100, 100) as place:
        place.write(io.BytesIO(tail), max_bytes=100)
        copied = place.copy_to_temp(60, part_number=2)
    assert copied.key.split("/")[1].startswith(f"{SESSION.hex}-000002-")
    assert (copied.size, copied.sha256) == (60, hashlib.sha256(tail).hexdigest())
    assert b"".join(storage.iter_temp(copied.key)) == tail


# --- assembling on local disk (local_assembly.py, local_backend.py) ------------------------


@pytest.mark.parametrize("link", [True, False], ids=["link", "copy"])
def test_an_assembly_file_longer_than_its_parts_is_refused(local, monkeypatch, link):
    if not link:
        monkeypatch.setattr(local_in_place.os, "link", refuse_link)
    sources = in_place([b"abc", b"def"])
    with open(assembly_path(local), "ab") as handle:
        handle.write(b"stray")
    with pytest.raises(storage.SourceMismatch) as failure:
        storage.assemble_final(sources, file_id=FILE, now=NOW)
    assert failure.value.source == sources[-1]
    assert not final_path(local).exists()


def test_a_short_assembly_file_names_the_first_part_it_lacks(local):
    sources = in_place([b"abc", b"def", b"ghi"])
    os.truncate(assembly_path(local), 4)
    with pytest.raises(storage.SourceMismatch, match=r"^part 2 ") as failure:
        storage.assemble_final(sources, file_id=FILE, now=NOW)
    assert failure.value.source == sources[1]


@pytest.mark.parametrize("link", [True, False], ids=["link", "copy"])
def test_a_part_changed_in_place_fails_finalize_and_keeps_no_final_file(local, monkeypatch, link):
    if not link:
        monkeypatch.setattr(local_in_place.os, "link", refuse_link)
    sources = in_place([b"abc", b"def", b"ghi"])
    with open(assembly_path(local), "r+b") as handle:
        handle.seek(4)
        handle.write(b"E")
    with pytest.raises(storage.SourceMismatch, match=r"^part 2 no longer matches"):
        storage.assemble_final(sources, file_id=FILE, now=NOW)
    assert not final_path(local).exists()


def own_part(number, data):
    """A part kept in a temp file of its own (recorded by the code before one file per
    session, while ``migrate`` ran): its source."""
    stored = storage.write_temp_part(
        io.BytesIO(data), session_id=SESSION, part_number=number, max_bytes=len(data)
    )
    return storage.part_source(number, len(data), stored.sha256, stored.key, None)


def test_parts_of_their_own_are_copied_into_their_range_then_assembled(local):
    sources = [*in_place([b"abc"]), own_part(2, b"defg"), own_part(3, b"hi")]
    stored = storage.assemble_final(sources, file_id=FILE, now=NOW, session_id=SESSION)
    assert (stored.size, stored.sha256) == (9, hashlib.sha256(b"abcdefghi").hexdigest())
    assert final_path(local).read_bytes() == b"abcdefghi"
    assert os.path.samefile(final_path(local), assembly_path(local))


def test_a_part_of_its_own_that_shrank_or_whose_range_is_held_is_not_placed(local):
    sources = [*in_place([b"abc"]), own_part(2, b"defg")]
    with (
        storage.backend().part_range(SESSION, 3, 4),
        pytest.raises(storage.StorageUnavailable, match="holds the part's range"),
    ):
        storage.assemble_final(sources, file_id=FILE, now=NOW, session_id=SESSION)
    (local / "temp" / sources[1].key).write_bytes(b"def")
    with pytest.raises(storage.SourceMismatch, match=r"^part 2 no longer matches"):
        storage.assemble_final(sources, file_id=FILE, now=NOW, session_id=SESSION)
    assert not final_path(local).exists()


def test_room_is_asked_for_a_copy_only(local, monkeypatch):
    asked = []
    sources = in_place([b"abc", b"de"])
    storage.assemble_final(sources, file_id=FILE, now=NOW, room=asked.append)
    assert asked == []

    def no_room(size):
        asked.append(size)
        raise storage.StorageFull("no room")

    monkeypatch.setattr(local_in_place.os, "link", refuse_link)
    other = in_place([b"abc", b"de"], session=uuid.UUID(int=8))
    with pytest.raises(storage.StorageFull):
        storage.assemble_final(other, file_id=uuid.uuid4(), now=NOW, room=no_room)
    assert asked == [5]


def test_a_final_name_left_by_another_file_is_replaced_by_the_link(local):
    final_path(local).parent.mkdir(parents=True)
    final_path(local).write_bytes(b"left over")
    sources = in_place([b"abc", b"de"])
    stored = storage.assemble_final(sources, file_id=FILE, now=NOW)
    assert final_path(local).read_bytes() == b"abcde"
    assert os.path.samefile(final_path(local), assembly_path(local))
    assert (stored.size, stored.sha256) == (5, hashlib.sha256(b"abcde").hexdigest())


def test_hashing_a_part_checks_it_lies_within_its_file(local):
    sources = in_place([b"abc", b"def", b"ghi"])
    digest = hashlib.sha256()
    storage.backend().hash_part(sources[2], digest)  # ends exactly at the end of the file
    assert digest.hexdigest() == hashlib.sha256(b"ghi").hexdigest()
    os.truncate(assembly_path(local), 8)
    with pytest.raises(storage.SourceMismatch, match=r"^part 3 no longer matches"):
        storage.backend().hash_part(sources[2], hashlib.sha256())


def test_final_bytes_are_none_for_a_link_and_every_byte_for_a_copy(local, settings):
    sources = in_place([b"abc", b"de"])
    assert storage.backend().final_bytes(sources) == 0
    with tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
        final = dict(settings.STORAGES[storage.FINAL_ALIAS])
        final["OPTIONS"] = {**final["OPTIONS"], "location": shm}
        settings.STORAGES = {**settings.STORAGES, storage.FINAL_ALIAS: final}
        assert storage.backend().final_bytes(sources) == 5


def test_the_final_location_is_under_the_final_root(local):
    key = storage.new_final_key(FILE, now=NOW)
    assert storage.backend().final_location(key) == {
        "backend": "local",
        "bucket": "",
        "key": key,
        "path": str(local / "final" / key),
    }


def test_a_stream_of_short_chunks_reads_whole_until_its_end():
    reader = streams.HashingReader(iter([b"ab", b"c", b"", b"de"]), limit=5)
    assert reader.read(4) == b"abc"  # an empty chunk is the end of an iterable
    reader = streams.HashingReader(iter([b"ab", b"c", b"de"]), limit=5)
    assert (reader.read(4), reader.read(4), reader.read(4)) == (b"abcd", b"e", b"")
    assert (reader.size, reader.hexdigest()) == (5, hashlib.sha256(b"abcde").hexdigest())


def test_a_local_part_of_its_own_feeds_the_files_hash(local):
    file_hash = hashlib.sha256(b"head")
    stored = storage.write_temp_part(
        io.BytesIO(b"body"), session_id=SESSION, part_number=2, max_bytes=4, file_hash=file_hash
    )
    assert stored.sha256 == hashlib.sha256(b"body").hexdigest()
    assert file_hash.hexdigest() == hashlib.sha256(b"headbody").hexdigest()
