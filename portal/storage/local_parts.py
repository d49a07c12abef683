"""Writing a part to local disk: from the socket into two reused buffers, hashed one block
behind.

``FileSystemStorage.save`` copies a stream in 64 KiB pieces, each a fresh ``bytes``, and
the caller hashes in the same thread. Here the request body is read (``readinto``, see
``portal.request_body``) into one of two 1 MiB buffers, written from it, and hashed in a
helper thread while the next block is received and written (hashlib releases the GIL), so
one upload keeps two cores busy. A buffer is refilled only after its hash is done. The
file is the one ``save`` would leave: created exclusively under the existing root, with
the storage's modes (``local.created_file``). Figures: docs/upload-performance.md.
"""

import hashlib
import itertools
import os
from concurrent.futures import ThreadPoolExecutor

from portal.storage import local
from portal.storage.objects import StoredObject
from portal.storage.streams import TooLarge

BLOCK_BYTES = 1024 * 1024
# Threads per process that hash parts one block behind the socket (one block per request).
HASH_THREADS = 4


class BlockReader:
    """Blocks of ``stream``, at most ``limit`` bytes in all (``TooLarge`` past that, before
    the excess is returned). ``source_error`` keeps what went wrong on the reading side, as
    ``HashingReader`` does, so a failing client is never taken for a failing disk."""

    def __init__(self, stream, limit=None):
        self.limit = limit
        self.size = 0
        self.source_error = None
        self._read = _reader_of(stream)

    def read_block(self):
        """The next block (a view of a reused buffer, valid until the next-but-one call),
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


def _reader_of(stream):
    """``read(n)`` of ``stream``: views of two reused buffers, in turn, when it has
    ``readinto``; its own ``read`` otherwise."""
    readinto = getattr(stream, "readinto", None)
    if readinto is None:
        return stream.read
    buffers = itertools.cycle([memoryview(bytearray(BLOCK_BYTES)) for _ in range(2)])

    def read(size):
        buffer = next(buffers)
        return buffer[: readinto(buffer[:size])]

    return read


def write_part(storage, key, reader: BlockReader) -> StoredObject:
    """Write ``reader``'s blocks to the new object ``key``; nothing is left on failure."""
    path = local.local_path(storage.location, key)
    with local.created_file(storage, path) as fd:
        digest = _copy_hashed(reader, fd)
    return StoredObject(key=key, size=reader.size, sha256=digest)


def _copy_hashed(reader, fd):
    """Write every block to ``fd`` while the previous one is hashed; the sha256 hex."""
    digest = hashlib.sha256()
    hashing = None
    try:
        while data := reader.read_block():
            local.write_all(fd, data)
            if hashing is not None:
                hashing.result()
            hashing = _hash_pool().submit(digest.update, data)
    finally:
        if hashing is not None:
            hashing.result()
    return digest.hexdigest()


_HASH_POOL = (None, None)  # (pid, executor): threads do not survive a fork


def _hash_pool():
    global _HASH_POOL
    pid, pool = _HASH_POOL
    if pid != os.getpid():
        pool = ThreadPoolExecutor(HASH_THREADS, thread_name_prefix="portal-hash")
        _HASH_POOL = (os.getpid(), pool)
    return pool
