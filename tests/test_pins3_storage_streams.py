"""``BlockReader`` hands its two block buffers on to the thread's next reader when it is
closed: once only, so two readers in use at the same time never fill the same buffer."""

import io
import os

import pytest

from portal import storage
from portal.storage.streams import BLOCK_BYTES, BlockReader


def test_closing_a_reader_twice_gives_its_buffers_away_only_once():
    """A second ``close`` must not hand the buffers (already taken by the next reader) on
    to a third: that reader would write its blocks over the blocks of the second."""
    first = BlockReader(io.BytesIO(b""))
    first.close()
    second = BlockReader(io.BytesIO(b"s" * BLOCK_BYTES))  # takes the first one's buffers
    first.close()
    third = BlockReader(io.BytesIO(os.urandom(BLOCK_BYTES)))

    block = second.read_block()
    third.read_block()

    assert bytes(block) == b"s" * BLOCK_BYTES
    second.close()
    third.close()


def test_hashing_a_replay_passes_on_the_streams_own_error():
    """``storage.hash_only`` (a replayed part) over a stream that fails: the caller gets
    that failure, as a write gets it through ``backend_faults``, not an error of its own."""
    stream = io.BytesIO(b"replayed")
    stream.close()

    with pytest.raises(ValueError, match="closed file"):
        storage.hash_only(stream, max_bytes=100)
