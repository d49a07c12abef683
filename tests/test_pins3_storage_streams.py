"""``BlockReader`` hands its two block buffers on to the thread's next reader when it is
closed: once only, so two readers in use at the same time never fill the same buffer."""

import io
import os

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
