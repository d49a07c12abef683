"""Streaming bytes into storage: hashing and counting them, and never more than allowed."""

import hashlib
from collections.abc import Iterable

READ_CHUNK_BYTES = 1024 * 1024


class TooLarge(Exception):
    """The stream carried more bytes than the caller allowed; nothing was kept."""


class HashingReader:
    """A read-only, non-seekable stream that hashes and counts what passes through it
    (``also``: more hashes that see the same bytes).

    Reading more than ``limit`` bytes raises ``TooLarge`` before the excess is returned.
    ``source_error`` keeps what went wrong on the reading side, so ``backend_faults`` can
    tell a failing stream from a failing backend whatever the backend wrapped it in.
    """

    closed = False

    def __init__(self, source, limit=None, also=()):
        self._read = source.read if hasattr(source, "read") else _IterReader(source).read
        self.limit = limit
        self.size = 0
        self.source_error = None
        self._sha = hashlib.sha256()
        self._hashes = [self._sha, *also]

    def read(self, size=-1):
        if size is None or size < 0:
            size = READ_CHUNK_BYTES
        if self.limit is not None:
            size = min(size, self.limit - self.size + 1)
        try:
            data = self._fill(size)
        except BaseException as exc:
            self.source_error = exc
            raise
        if self.limit is not None and self.size + len(data) > self.limit:
            self.source_error = TooLarge(f"more than {self.limit} bytes")
            raise self.source_error
        self.size += len(data)
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
