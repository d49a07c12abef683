"""``portal.storage.streams`` at the edges a whole-file upload never reaches: a read of
no bytes, a read of "whatever you have", and a limit hit in the middle of a block (the
stream must not be drained past the limit)."""

import hashlib
import io

import pytest

from portal.storage import streams
from portal.storage.streams import READ_CHUNK_BYTES, BlockReader, HashingReader, TooLarge


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
