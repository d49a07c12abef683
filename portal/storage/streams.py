"""Streaming bytes into storage, hashing and counting them, never more than allowed: as a
file object for Django's storages (``HashingReader``), and on local disk from the socket
into two reused buffers, each block hashed in a helper thread while the next is written
(hashlib releases the GIL), so one upload keeps two cores busy (``write_blocks``).
"""

import hashlib
import itertools
import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

READ_CHUNK_BYTES = 1024 * 1024
BLOCK_BYTES = 1024 * 1024
# Threads per process that hash parts one block behind the socket (one block per request,
# two hashes of it where the file's hash is saved as well).
HASH_THREADS = 8


class TooLarge(Exception):
    """The stream carried more bytes than the caller allowed; nothing was kept."""


class _Limited:
    """Counts what is read, raising ``TooLarge`` before more than ``limit`` bytes are
    returned. ``source_error`` keeps what went wrong on the reading side, so
    ``backend_faults`` can tell a failing stream from a failing backend whatever the
    backend wrapped it in."""

    def __init__(self, limit):
        self.limit = limit
        self.size = 0
        self.source_error = None

    def _counted(self, read, size):
        if self.limit is not None:
            size = min(size, self.limit - self.size + 1)
        try:
            data = read(size)
        except BaseException as exc:
            self.source_error = exc
            raise
        if self.limit is not None and self.size + len(data) > self.limit:
            self.source_error = TooLarge(f"more than {self.limit} bytes")
            raise self.source_error
        self.size += len(data)
        return data


class HashingReader(_Limited):
    """A read-only, non-seekable stream that hashes what passes through it (``also``: more
    hashes that see the same bytes)."""

    closed = False

    def __init__(self, source, limit=None, also=()):
        super().__init__(limit)
        self._read = source.read if hasattr(source, "read") else _IterReader(source).read
        self._sha = hashlib.sha256()
        self._hashes = [self._sha, *also]

    def read(self, size=-1):
        if size is None or size < 0:
            size = READ_CHUNK_BYTES
        data = self._counted(self._fill, size)
        for digest in self._hashes:
            digest.update(data)
        return data

    def _fill(self, size):
        """Read until ``size`` bytes or end of stream: a short read must not look like EOF."""
        data = self._read(size)
        if len(data) in (0, size):
            return data
        pieces = [data]
        got = len(data)
        while got < size:
            more = self._read(size - got)
            if not more:
                break
            pieces.append(more)
            got += len(more)
        return b"".join(pieces)

    def hexdigest(self):
        return self._sha.hexdigest()

    def readable(self):
        return True

    def seekable(self):
        return False

    def close(self):
        pass


class _IterReader:
    """Adapts an iterable of byte chunks to ``read(n)``."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self._buffer = memoryview(b"")

    def read(self, size):
        if not self._buffer:
            self._buffer = memoryview(next(self._chunks, b""))
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return bytes(data)


class BlockReader(_Limited):
    """Blocks of ``stream``: views of two buffers reused across requests where the stream
    has ``readinto``."""

    def __init__(self, stream, limit=None):
        super().__init__(limit)
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
        """The next block (valid until the next-but-one call): ``BLOCK_BYTES`` long where
        the stream gives ``readinto``, shorter only at its end; empty at the end."""
        return self._counted(self._read, BLOCK_BYTES)


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
