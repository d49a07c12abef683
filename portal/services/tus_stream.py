"""A request body on its way into storage (ending early, not failing, when the client goes
away) and a tus part's bytes, the upload's tail read back first."""

from portal import storage


class TailMissing(Exception):
    """The tail's temp object is gone."""


def tail_chunks(key, size):
    """The tail's first ``size`` bytes, in chunks; ``TailMissing`` when it is gone."""
    left = size
    try:
        for chunk in storage.iter_temp(key):
            yield chunk[:left]
            left -= min(left, len(chunk))
            if not left:
                return
    except FileNotFoundError:
        raise TailMissing(key) from None
    if left:
        raise TailMissing(key)


class PartBytes:
    """One part's bytes: the tail's (read back) first, then at most ``want`` of the body's.
    Gives ``readinto`` when there is no tail (the fast path of local storage)."""

    def __init__(self, tail_key, tail_bytes, body, want):
        self._tail = tail_chunks(tail_key, tail_bytes) if tail_key else None
        self._pending = b""
        self._body = body
        self._want = want
        self.taken = 0
        if self._tail is None:
            self.readinto = self._readinto

    def read(self, size=-1):
        if size is None or size < 0:
            size = storage.READ_CHUNK_BYTES
        if self._tail is not None:
            if not self._pending:
                self._pending = next(self._tail, b"")
            if self._pending:
                data, self._pending = self._pending[:size], self._pending[size:]
                return data
            self._tail = None
        data = self._body.read(min(size, self._want - self.taken))
        self.taken += len(data)
        return data

    def _readinto(self, buffer):
        with memoryview(buffer) as view:
            got = self._body.readinto(view[: self._want - self.taken])
        self.taken += got
        return got


class Body:
    """The request body: at most ``left`` bytes, each fed to ``hashes``; a body that
    breaks off (the client went away, a timeout) ends early, with ``broken`` saying why."""

    ENDED = "the body ended early"

    def __init__(self, stream, length, hashes):
        self._stream = stream
        self._hashes = hashes
        self.left = length
        self.taken = 0
        self.broken = ""

    def read(self, size):
        size = min(size, self.left)
        if size <= 0 or self.broken:
            return b""
        try:
            data = self._stream.read(size)
        except OSError as exc:
            return self._broke(type(exc).__name__, b"")
        if not data:
            return self._broke(self.ENDED, b"")
        self._took(data)
        return data

    def readinto(self, view):
        if not len(view) or self.broken or not self.left:
            return 0
        view = view[: self.left]
        readinto = getattr(self._stream, "readinto", None)
        try:
            if readinto is not None:
                got = readinto(view)
            else:
                data = self._stream.read(len(view))
                got = len(data)
                view[:got] = data
        except OSError as exc:
            return self._broke(type(exc).__name__, 0)
        if not got:
            return self._broke(self.ENDED, 0)
        self._took(view[:got])
        return got

    def _took(self, data):
        for digest in self._hashes:
            digest.update(data)
        self.left -= len(data)
        self.taken += len(data)

    def _broke(self, why, nothing):
        self.broken = why
        return nothing
