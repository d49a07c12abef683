"""``portal.storage.streams`` at the edges a whole-file upload never reaches: a read of
no bytes, a read of "whatever you have", and a limit hit in the middle of a block (the
stream must not be drained past the limit)."""

import hashlib
import io
import os

import pytest

from portal.storage import streams
from portal.storage.streams import (
    BLOCK_BYTES,
    READ_CHUNK_BYTES,
    BlockReader,
    HashingReader,
    TooLarge,
)


def test_a_read_of_zero_bytes_reads_nothing_and_hashes_nothing():
    """``read(0)`` is no read at all (io's contract): taking a chunk there would hand a
    caller bytes it did not ask for and count them against the limit."""
    source = io.BytesIO(b"abcdef")
    reader = HashingReader(source, limit=6)

    assert reader.read(0) == b""
    assert source.tell() == 0
    assert reader.read(6) == b"abcdef"
    assert reader.hexdigest() == hashlib.sha256(b"abcdef").hexdigest()


@pytest.mark.parametrize("size", [None, -1])
def test_a_read_of_any_size_takes_one_chunk(size):
    """``read()``/``read(None)`` give at most ``READ_CHUNK_BYTES``, not the whole stream
    (nor a TypeError): a file-like reader must not pull a whole part into memory."""
    data = bytes(range(256)) * (READ_CHUNK_BYTES // 256 + 7)
    reader = HashingReader(io.BytesIO(data))

    assert reader.read(size) == data[:READ_CHUNK_BYTES]
    assert reader.read(size) == data[READ_CHUNK_BYTES:]
    assert reader.read(size) == b""
    assert reader.hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_block_reader_stops_reading_one_byte_past_its_limit():
    """Over a ``readinto`` stream a too-large body is read only to ``limit + 1`` bytes:
    the rest (up to a block more) is never pulled off the socket into the buffer."""
    source = io.BytesIO(bytes(range(100)))
    reader = BlockReader(source, limit=10)

    with pytest.raises(TooLarge):
        reader.read_block()
    reader.close()

    assert source.tell() == 11
    assert reader.size == 0


def test_a_block_reader_within_its_limit_reads_exactly_the_stream():
    """At exactly ``limit`` bytes the block is the whole stream, and the next is empty."""
    source = io.BytesIO(bytes(range(10)))
    reader = BlockReader(source, limit=10)

    assert bytes(reader.read_block()) == bytes(range(10))
    assert bytes(reader.read_block()) == b""
    assert reader.size == 10
    reader.close()
    assert streams.BLOCK_BYTES > 10


def test_the_extra_hashes_of_a_hashing_reader_see_every_byte():
    """``also`` (the file's hash, on S3) is fed the same bytes as the part's sha256, in
    order, through short reads of the source."""
    data = os.urandom(3000)
    file_hash = hashlib.sha256(b"earlier parts")
    reader = HashingReader(iter([data[:1000], data[1000:1001], data[1001:]]), also=[file_hash])

    while reader.read(700):
        pass

    assert reader.hexdigest() == hashlib.sha256(data).hexdigest()
    assert file_hash.hexdigest() == hashlib.sha256(b"earlier parts" + data).hexdigest()


@pytest.mark.parametrize("own_hash", [True, False])
def test_write_blocks_writes_from_the_offset_and_feeds_both_hashes(tmp_path, own_hash):
    """Blocks land from ``offset`` on, one after the other; the file's hash sees them all
    and the part's own sha256 is returned only with ``own_hash`` ("" without)."""
    data = os.urandom(2 * BLOCK_BYTES + 333)
    file_hash = hashlib.sha256(b"before")
    path = tmp_path / "file"
    path.write_bytes(b"x" * 7)
    fd = os.open(path, os.O_RDWR)
    try:
        digest = streams.write_blocks(
            fd, 7, BlockReader(io.BytesIO(data)), file_hash, own_hash=own_hash
        )
    finally:
        os.close(fd)

    assert path.read_bytes() == b"x" * 7 + data
    assert digest == (hashlib.sha256(data).hexdigest() if own_hash else "")
    assert file_hash.hexdigest() == hashlib.sha256(b"before" + data).hexdigest()
