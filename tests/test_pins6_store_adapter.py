"""Pins (weak-pin review 6, storage area): the storage adapter's own functions, where the
suite's data let a careless change pass: duplicate keys, limits, chunk sizes, messages."""

import hashlib
import io
import uuid
from datetime import UTC, datetime

import pytest

from portal import storage

FILE = uuid.UUID("f11e0000-0000-4000-8000-0000000000a6")
NOW = datetime(2026, 5, 6, 7, 8, tzinfo=UTC)


def test_a_final_key_named_twice_is_deleted_and_reported_once(any_storage):
    """delete_final drops duplicate keys first: cleanup counts what ``deleted`` says went."""
    stored = storage.write_final([b"final bytes"], file_id=FILE, now=NOW)
    other = storage.write_final([b"other"], file_id=uuid.uuid4(), now=NOW)
    result = storage.delete_final([stored.key, stored.key])
    assert result.deleted == [stored.key]
    assert result.failed == {}
    # The other final object is untouched.
    assert storage.delete_final([other.key]).deleted == [other.key]


def test_hashing_a_replay_refuses_a_byte_past_its_limit_and_takes_exactly_the_limit():
    """hash_only keeps max_bytes: a replayed part longer than recorded is TooLarge, not cut."""
    body = bytes(range(10))
    exact = storage.hash_only(io.BytesIO(body), max_bytes=10)
    assert (exact.size, exact.key) == (10, "")
    assert exact.sha256 == hashlib.sha256(body).hexdigest()
    with pytest.raises(storage.TooLarge):
        storage.hash_only(io.BytesIO(body + b"!"), max_bytes=10)


def test_a_temp_object_is_read_back_in_the_chunk_size_asked_for(any_storage):
    """iter_temp passes its chunk_size on: a reader asking for 4 bytes gets 4-byte chunks."""
    body = b"0123456789"
    part = storage.write_temp_part(
        io.BytesIO(body), session_id=FILE, part_number=2, max_bytes=len(body)
    )
    assert list(storage.iter_temp(part.key, 4)) == [b"0123", b"4567", b"89"]
    assert b"".join(storage.iter_temp(part.key)) == body


def test_assembly_reports_the_bytes_done_so_far_after_each_part(any_storage):
    """progress gets the running total (3, 7, 12), not each part's own size: finalize
    renews its lease and shows how far it got by it."""
    bodies = [b"abc", b"defg", b"hijkl"]
    sources = []
    for number, body in enumerate(bodies, 1):
        part = storage.write_temp_part(
            io.BytesIO(body), session_id=FILE, part_number=number, max_bytes=len(body)
        )
        sources.append(storage.part_source(number, part.size, part.sha256, part.key, None))
    done = []
    stored = storage.assemble_final(
        sources, file_id=FILE, now=NOW, progress=done.append, session_id=FILE
    )
    assert done == [3, 7, 12]
    assert stored.sha256 == hashlib.sha256(b"".join(bodies)).hexdigest()


def test_a_temp_part_of_its_own_feeds_the_files_hash_it_is_given(any_storage):
    """write_temp_part hands file_hash the bytes (a tus tail on local disk too): else the
    saved file hash misses the tail and finalize must read the whole file again."""
    file_hash = hashlib.sha256(b"head:")
    part = storage.write_temp_part(
        io.BytesIO(b"tail"), session_id=FILE, part_number=3, max_bytes=4, file_hash=file_hash
    )
    assert file_hash.hexdigest() == hashlib.sha256(b"head:tail").hexdigest()
    assert part.sha256 == hashlib.sha256(b"tail").hexdigest()
