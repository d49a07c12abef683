"""Writing a part to local disk: from the socket into two reused buffers, hashed one block
behind in a helper thread (hashlib releases the GIL), so one upload keeps two cores busy.

A buffer is refilled only after its hash is done; the file is the one
``FileSystemStorage.save`` would leave (exclusive create, the storage's modes).
"""

import hashlib
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from portal.storage import local, local_in_place
from portal.storage.backends import StoredObject, TooLarge

BLOCK_BYTES = 1024 * 1024
# Threads per process that hash parts one block behind the socket (one block per request,
# two hashes of it where the file's hash is saved as well).
HASH_THREADS = 8


class BlockReader:
    """Blocks of ``stream``, at most ``limit`` bytes in all (``TooLarge`` past that, before
    the excess is returned). ``source_error`` keeps what went wrong on the reading side, as
    ``HashingReader`` does, so a failing client is never taken for a failing disk."""

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
        """Hand the buffers on to the thread's next reader: allocating (and zeroing) 2 MiB
        per request cost about 4 % of the upload's CPU. Only once nothing uses a block."""
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
    """``read(n)`` returning views of ``buffers``, in turn, filled by ``readinto``: ``n``
    bytes unless the stream ends first. A socket gives what has arrived (behind a proxy or
    over a real network often 16-64 KiB), and every block costs a write, a hand-off to
    the hashing thread and a wait for it, so a block is filled before it goes on."""
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


def write_part(storage, key, reader: BlockReader, also=None) -> StoredObject:
    """Write ``reader``'s blocks to the new object ``key``; nothing is left on failure.
    ``also`` (the whole file's hash, when this part is the next one it needs) sees the
    same bytes."""
    with local.created_file(storage, key) as fd:
        digest = _copy_hashed(reader, lambda data, _at: local.write_all(fd, data), also)
    return StoredObject(key=key, size=reader.size, sha256=digest)


def write_in_place(fd, key, offset, reader: BlockReader, also=None, *, own_hash=True):
    """Write ``reader``'s blocks into the assembly file ``fd`` from ``offset`` (the caller
    holds that range, see ``local_in_place``). Without ``own_hash`` only ``also`` (the
    file's hash) sees the bytes and the part records no sha256 (``PartRange.write``)."""
    digest = _copy_hashed(
        reader, lambda data, at: local_in_place.pwrite_all(fd, data, offset + at), also, own_hash
    )
    return StoredObject(key=key, size=reader.size, sha256=digest, offset=offset)


def _copy_hashed(reader, write, also=None, own_hash=True):
    """``write(block, position)`` every block while the previous one is hashed (the part's
    sha256, and ``also`` in a second thread); the part's sha256 hex ("" when only ``also``
    was asked for)."""
    own = hashlib.sha256() if own_hash or also is None else None
    digests = [digest for digest in (own, also) if digest is not None]
    hashing = []
    written = 0
    try:
        while data := reader.read_block():
            write(data, written)
            written += len(data)
            for job in hashing:
                job.result()
            hashing = [_hash_pool().submit(digest.update, data) for digest in digests]
    finally:
        for job in hashing:
            job.result()
        reader.close()
    return own.hexdigest() if own is not None else ""


_HASH_POOL = (None, None)  # (pid, executor): threads do not survive a fork


def _hash_pool():
    global _HASH_POOL
    pid, pool = _HASH_POOL
    if pid != os.getpid():
        pool = ThreadPoolExecutor(HASH_THREADS, thread_name_prefix="portal-hash")
        _HASH_POOL = (os.getpid(), pool)
    return pool


class RangeReader:
    """``read(n)`` over ``size`` bytes of ``fd`` from ``offset`` (``os.pread``): a range of
    an assembly file read back."""

    def __init__(self, fd, offset, size):
        self.fd, self.position, self.left = fd, offset, size

    def read(self, size=-1):
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = os.pread(self.fd, size, self.position) if size else b""
        self.position += len(data)
        self.left -= len(data)
        return data
