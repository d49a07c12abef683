"""Writing a part to local disk: from the socket into two reused buffers, hashed one block
behind in a helper thread (hashlib releases the GIL), so one upload keeps two cores busy.
A buffer is refilled only after its hash is done.
"""

import hashlib
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from portal.storage.streams import TooLarge

BLOCK_BYTES = 1024 * 1024
# Threads per process that hash parts one block behind the socket (one block per request,
# two hashes of it where the file's hash is saved as well).
HASH_THREADS = 8


class BlockReader:
    """Blocks of ``stream``, at most ``limit`` bytes in all (``TooLarge`` before the excess
    is returned); ``source_error`` as in ``HashingReader``."""

    def __init__(self, stream, limit=None):
        self.limit = limit
        self.size = 0
        self.source_error = None
        self._buffers = None
        readinto = getattr(stream, "readinto", None)
        if readinto is None:
            self._read = stream.read
        else:
            self._buffers = _take_buffers()
            self._read = _reading_into(readinto, self._buffers)

    def close(self):
        """Hand the buffers on to the thread's next reader, once nothing uses a block:
        allocating (and zeroing) 2 MiB per request cost about 4 % of the upload's CPU."""
        if self._buffers is not None:
            _SPARE.buffers = self._buffers
            self._buffers = None

    def read_block(self):
        """The next block (a view of a reused buffer, valid until the next-but-one call):
        ``BLOCK_BYTES`` long where the stream gives ``readinto``, shorter only at its end;
        empty at the end of the stream."""
        want = BLOCK_BYTES if self.limit is None else min(BLOCK_BYTES, self.limit - self.size + 1)
        try:
            data = self._read(want)
        except BaseException as exc:
            self.source_error = exc
            raise
        self.size += len(data)
        if self.limit is not None and self.size > self.limit:
            self.source_error = TooLarge(f"more than {self.limit} bytes")
            raise self.source_error
        return data


_SPARE = threading.local()  # one pair of buffers a request thread handed on


def _take_buffers():
    buffers = getattr(_SPARE, "buffers", None)
    _SPARE.buffers = None
    return buffers or [memoryview(bytearray(BLOCK_BYTES)) for _ in range(2)]


def _reading_into(readinto, buffers):
    """``read(n)`` returning views of ``buffers`` in turn, filled to ``n`` bytes unless
    the stream ends: a socket gives what has arrived (often 16-64 KiB), and every block
    costs a write and a hand-off to the hashing thread."""
    buffers = itertools.cycle(buffers)

    def read(size):
        buffer = next(buffers)
        filled = 0
        while filled < size:
            got = readinto(buffer[filled:size])
            if not got:
                break
            filled += got
        return buffer[:filled]

    return read


def write_blocks(fd, offset, reader, also=None, *, own_hash=True):
    """Write ``reader``'s blocks into ``fd`` from ``offset``, each hashed (the part's
    sha256, and ``also`` in a second thread) while the next one is written; the part's
    sha256 hex, or "" without ``own_hash`` (only ``also``, the file's hash, sees them)."""
    own = hashlib.sha256() if own_hash or also is None else None
    digests = [digest for digest in (own, also) if digest is not None]
    hashing = []
    try:
        while data := reader.read_block():
            pwrite_all(fd, data, offset)
            offset += len(data)
            for job in hashing:
                job.result()
            hashing = [_hash_pool().submit(digest.update, data) for digest in digests]
    finally:
        for job in hashing:
            job.result()
        reader.close()
    return own.hexdigest() if own is not None else ""


def pwrite_all(fd, data, offset):
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


_HASH_POOL = (None, None)  # (pid, executor): threads do not survive a fork


def _hash_pool():
    global _HASH_POOL
    pid, pool = _HASH_POOL
    if pid != os.getpid():
        pool = ThreadPoolExecutor(HASH_THREADS, thread_name_prefix="portal-hash")
        _HASH_POOL = (os.getpid(), pool)
    return pool
