"""Local disk storage keeps no file descriptor it opened (the walk below the root, the OFD
lock probe), and the adapter's objects say where their bytes start: an object of its own
has no offset (``StoredObject.offset`` None), only a part in its range of the session's
file has one."""

import dataclasses
import hashlib
import io
import os
import tracemalloc
import uuid

import pytest

from portal import storage
from portal.storage import local_in_place, local_walk
from tests.api_helpers import Api, make_token, sha256
from tests.conftest import apply_storage
from tests.fixtures import written_assembly

SESSION = "0f0e0d0c-0b0a-0908-0706-050403020100"
MIB = 1024 * 1024


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def open_fds_under(path):
    """This process's fds on files or directories under ``path``."""
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            targets.append(os.readlink(f"/proc/self/fd/{fd}"))
        except FileNotFoundError:
            continue  # the listing's own fd
    return sum(target.startswith(str(path)) for target in targets)


@pytest.fixture
def local(settings, data_dir):
    apply_storage(settings, "local", data_dir)


def test_the_walk_below_the_root_closes_every_directory_it_opens(local, data_dir):
    """Keys two directories deep: save, read, list and delete leave no fd behind."""
    temp = storage.temp_storage()
    temp.save("aa/bb/warm", io.BytesIO(b"warm"))  # first use: imports, caches
    storage.delete_temp(["aa/bb/warm"])
    before = open_fds_under(data_dir)

    for n in range(20):
        key = temp.save(f"aa/b{n % 3}/object-{n}", io.BytesIO(b"x" * n))
        assert b"".join(storage.iter_temp(key)) == b"x" * n
    assert len(list(storage.list_temp())) == 20
    result = storage.delete_temp([f"aa/b{n % 3}/object-{n}" for n in range(20)])

    assert len(result.deleted) == 20 and not result.failed
    assert open_fds_under(data_dir) == before == 0


def test_parts_written_in_place_leave_no_fd_behind(local, client, user, data_dir):
    """A whole upload through the API (in place, then a link): no fd left on storage."""
    api = Api(client, make_token(user))
    before = open_fds_under(data_dir)

    data = os.urandom(5000)
    session = api.start(data, 1000)["id"]
    api.upload(session, data, 1000)
    finalized = api.finalize(session)

    assert finalized.status_code == 200, finalized.content
    assert finalized.json()["file"]["sha256"] == sha256(data)
    assert open_fds_under(data_dir) == before == 0


def test_the_range_lock_probe_closes_its_second_descriptor():
    """``available()`` opens the scratch file twice; neither stays open."""
    local_in_place.available.cache_clear()
    try:
        before = open_fds()
        assert local_in_place.available() is True  # Linux has OFD locks
        assert open_fds() == before
    finally:
        local_in_place.available.cache_clear()


def test_objects_of_their_own_have_no_offset(any_storage):
    """A temp object, a final object written or assembled: ``offset`` None (nothing of them
    lies in a session's file); a part in its range has its offset."""
    body = os.urandom(3000)
    part = storage.write_temp_part(
        io.BytesIO(body), session_id=SESSION, part_number=1, max_bytes=len(body)
    )
    assert part.offset is None
    assert part.sha256 == hashlib.sha256(body).hexdigest()

    final = storage.write_final([body], file_id=uuid.uuid4())
    assert final.offset is None and final.size == len(body)

    source = storage.part_source(1, part.size, part.sha256, part.key, part.offset)
    assembled = storage.assemble_final([source], file_id=uuid.uuid4(), session_id=SESSION)
    assert assembled.offset is None
    assert assembled.sha256 == hashlib.sha256(body).hexdigest()
    assert storage.hash_only(io.BytesIO(body), max_bytes=len(body)).offset is None


def test_a_part_in_its_range_has_its_offset(local):
    with storage.backend().part_range(SESSION, 4096, 100) as place:
        stored = place.write(io.BytesIO(b"y" * 100), max_bytes=100)
    assert (stored.offset, stored.size, stored.key) == (4096, 100, storage.assembly_key(SESSION))


def test_the_adapters_objects_are_values(local):
    """Objects and sources cannot change once made (a recorded size or sha256 stays what
    was checked), and can be kept in sets and as keys."""
    stored = storage.write_temp_part(
        io.BytesIO(b"abc"), session_id=SESSION, part_number=1, max_bytes=3
    )
    source = storage.part_source(1, stored.size, stored.sha256, stored.key, stored.offset)
    for value, field in ((stored, "size"), (source, "sha256")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, field, 0)
    assert len({stored, dataclasses.replace(stored)}) == 1
    assert {source: 1}[storage.part_source(1, 3, stored.sha256, stored.key, None)] == 1
    listed = next(iter(storage.list_temp()))
    with pytest.raises(dataclasses.FrozenInstanceError):
        listed.key = "other"


def test_temp_objects_are_read_back_in_chunks_of_a_mebibyte(any_storage):
    body = os.urandom(2 * MIB + 1000)
    stored = storage.write_temp_part(
        io.BytesIO(body), session_id=SESSION, part_number=1, max_bytes=len(body)
    )
    chunks = list(storage.iter_temp(stored.key))
    assert [len(chunk) for chunk in chunks] == [MIB, MIB, 1000]
    assert b"".join(chunks) == body
    assert storage.READ_CHUNK_BYTES == MIB


class ReadOnly:
    """A stream with ``read`` only."""

    def __init__(self, data):
        self._data = io.BytesIO(data)

    def read(self, size=-1):
        return self._data.read(size)


def test_a_thread_reuses_its_block_buffers_from_one_part_to_the_next(local):
    """The two 1 MiB block buffers go on to the thread's next part: writing it allocates
    no new ones (``streams.BlockReader.close``)."""
    first, second = io.BytesIO(os.urandom(3 * MIB)), io.BytesIO(os.urandom(3 * MIB))
    with storage.backend().part_range(SESSION, 0, 3 * MIB) as place:
        place.write(first, max_bytes=3 * MIB)
    with storage.backend().part_range(SESSION, 9 * MIB, 10) as place:  # no readinto:
        place.write(ReadOnly(b"r" * 10), max_bytes=10)  # no buffers, none given back
    tracemalloc.start()
    try:
        with storage.backend().part_range(SESSION, 3 * MIB, 3 * MIB) as place:
            stored = place.write(second, max_bytes=3 * MIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stored.sha256 == hashlib.sha256(second.getvalue()).hexdigest()
    assert peak < MIB // 2, peak


def test_the_assembly_file_is_where_operations_md_says(local, client, user, data_dir):
    """``temp/<ab>/<session id without dashes>-parts`` (docs/operations.md): operators and
    the next version find a session's file by that name."""
    api = Api(client, make_token(user))
    data = os.urandom(2000)
    session = api.start(data, 1000)["id"]
    assert api.put(session, 1, data[:1000]).status_code == 201

    hexid = uuid.UUID(session).hex
    path = data_dir / "temp" / hexid[:2] / f"{hexid}-parts"
    assert path.read_bytes()[:1000] == data[:1000]
    assert storage.assembly_session(f"{hexid[:2]}/{hexid}-parts") == uuid.UUID(session)
    assert storage.assembly_session(f"{hexid[:2]}/{hexid}-000001-abc") is None


def test_linking_the_final_name_never_follows_a_symlink_put_at_the_assembly_name(local, data_dir):
    """Between finalize's open and its link, the assembly file is moved to a name of
    somebody else's and a symlink to it put in its place: linking through the symlink
    would give the final file a name the portal did not make (one that could change its
    bytes later). The link is refused and no final file is left."""
    with written_assembly(SESSION) as (key, temp, final, fd):
        moved = data_dir / "temp" / "elsewhere"
        os.rename(temp.path(key), moved)
        os.symlink(moved, temp.path(key))

        with pytest.raises(local_walk.LinkRefused):
            local_in_place.link_final(temp, key, fd, final, "2026/01/01/final")
    assert not os.path.lexists(final.path("2026/01/01/final"))
    assert os.stat(moved).st_nlink == 1


@pytest.mark.parametrize(
    "key", ["../outside", "aa/../../outside", "/abs/outside", "", "aa/nul\0key"]
)
def test_a_key_that_leaves_the_root_is_refused_by_every_local_operation(local, data_dir, key):
    """Django's ``Storage.open``/``delete``/``path`` callers and the adapter alike: no byte
    read or removed outside the root, whatever the key."""
    from django.core.exceptions import SuspiciousFileOperation

    outside = data_dir / "outside"
    outside.write_bytes(b"not the portal's")
    temp = storage.temp_storage()
    for operation in (
        lambda: temp.open(key),
        lambda: temp.delete(key),
        lambda: list(storage.iter_temp(key)),
        lambda: storage.delete_temp([key]),
        lambda: temp.save(key, io.BytesIO(b"x")),
    ):
        with pytest.raises(SuspiciousFileOperation):
            operation()
    assert outside.read_bytes() == b"not the portal's"


def test_a_bulk_delete_with_one_key_leaving_the_root_deletes_nothing(local, data_dir):
    """Every key is checked before the first unlink: a batch with a bad key is refused
    whole, even the keys whose directories come first."""
    from django.core.exceptions import SuspiciousFileOperation

    temp = storage.temp_storage()
    kept = [temp.save(name, io.BytesIO(b"k")) for name in ("kept", "aa/kept")]

    with pytest.raises(SuspiciousFileOperation):
        storage.delete_temp([*kept, "../outside"])

    assert all(temp.exists(key) for key in kept)


def test_a_refused_link_changes_nothing_at_the_final_name(local, data_dir):
    """The assembly file has a name the portal did not give it (a planted hard link):
    ``link_final`` refuses before it touches the final name, so a file already there (an
    earlier attempt's) stays as it was."""
    with written_assembly(SESSION) as (key, temp, final, fd):
        final_key = final.save("2026/01/01/final", io.BytesIO(b"an earlier attempt"))
        os.link(temp.path(key), data_dir / "planted")
        with pytest.raises(local_walk.LinkRefused):
            local_in_place.link_final(temp, key, fd, final, final_key)
    with final.open(final_key) as handle:
        assert handle.read() == b"an earlier attempt"
    assert os.stat(data_dir / "planted").st_nlink == 2


def test_keys_are_sharded_as_documented(local):
    """Temp objects of their own: ``<2 hex>/<session hex>-<part, 6 digits>-<12 hex>`` (256
    shard directories, docs/design.md); final files: ``YYYY/MM/DD/<file hex>``."""
    import re
    from datetime import UTC, datetime

    stored = storage.write_temp_part(
        io.BytesIO(b"k"), session_id=SESSION, part_number=3, max_bytes=1
    )
    hexid = uuid.UUID(SESSION).hex
    assert re.fullmatch(rf"[0-9a-f]{{2}}/{hexid}-000003-[0-9a-f]{{12}}", stored.key), stored.key
    file_id = uuid.uuid4()
    when = datetime(2026, 2, 3, 4, 5, tzinfo=UTC)
    assert storage.new_final_key(file_id, now=when) == f"2026/02/03/{file_id.hex}"


def test_a_symlink_at_a_key_is_a_refused_link_never_followed(local, data_dir):
    """A symlink put at an object's own name: Django's ``open`` gets ``LinkRefused``, the
    adapter ``StorageLinkRefused`` (an operator must remove it), and the target is not
    read."""
    temp = storage.temp_storage()
    key = temp.save("aa/object", io.BytesIO(b"mine"))
    (data_dir / "secret").write_bytes(b"not the portal's")
    os.unlink(temp.path(key))
    os.symlink(data_dir / "secret", temp.path(key))

    with pytest.raises(local_walk.LinkRefused):
        temp.open(key)
    with pytest.raises(storage.StorageLinkRefused):
        list(storage.iter_temp(key))


def test_local_storage_honours_djangos_allow_overwrite(tmp_path):
    """``LocalStorage(allow_overwrite=True)`` replaces a file at the name, as Django's
    ``FileSystemStorage`` does; without it a second save gets a name of its own."""
    from portal.storage.local import LocalStorage

    overwriting = LocalStorage(location=str(tmp_path), allow_overwrite=True)
    assert overwriting.save("aa/name", io.BytesIO(b"first")) == "aa/name"
    assert overwriting.save("aa/name", io.BytesIO(b"second")) == "aa/name"
    with overwriting.open("aa/name") as handle:
        assert handle.read() == b"second"
    keeping = LocalStorage(location=str(tmp_path))
    other = keeping.save("aa/name", io.BytesIO(b"third"))
    assert other != "aa/name"
    with keeping.open("aa/name") as handle:
        assert handle.read() == b"second"


def test_without_working_ofd_locks_ranges_take_named_locks(local, monkeypatch, tmp_path):
    """The probe cannot even make its scratch file (a broken temp directory): OFD locks
    count as unavailable, and a part's range is held by a named lock instead."""
    import tempfile

    from django.db import connection

    if connection.vendor == "postgresql":
        pytest.skip("advisory locks: one session holds a lock any number of times")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    local_in_place.available.cache_clear()
    try:
        assert local_in_place.available() is False
        with storage.backend().part_range(SESSION, 0, 10) as place:
            stored = place.write(io.BytesIO(b"0123456789"), max_bytes=10)
            with pytest.raises(storage.RangeBusy), storage.backend().part_range(SESSION, 0, 10):
                pass
        assert stored.size == 10
    finally:
        local_in_place.available.cache_clear()
