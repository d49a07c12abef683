"""Reading a request body into the caller's buffer: under gunicorn straight from its socket,
counted off its ``LengthReader`` (each layer's buffer cost a copy, 42 % of a part's CPU).
It relies on gunicorn internals (pinned; ``tests/test_request_body.py`` runs its parser);
any other server or framing goes through ``request.read``."""

GUNICORN_SOCKET = "gunicorn.socket"


def body_reader(request):
    """A reader of ``request``'s body: ``readinto(buffer) -> int`` (0 at the end), ``read(n)``."""
    return _GunicornBody.wrap(request) or _DjangoBody(request)


class _DjangoBody:
    """Any WSGI server: Django's ``request.read`` (one copy into the caller's buffer)."""

    def __init__(self, request):
        self._read = self.read = request.read

    def readinto(self, buffer):
        data = self._read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _GunicornBody:
    """gunicorn's HTTP/1.1 ``Content-Length`` body, read straight from its socket."""

    def __init__(self, body, reader, sock):
        self._body = body
        self._reader = reader
        self._unreader = reader.unreader
        self._sock = sock

    @classmethod
    def wrap(cls, request):
        sock = request.META.get(GUNICORN_SOCKET)
        if sock is None:
            return None
        try:
            from gunicorn.http.body import Body, LengthReader
            from gunicorn.http.unreader import SocketUnreader
        except ImportError:  # pragma: no cover - gunicorn is a runtime dependency
            return None
        body = request.META.get("wsgi.input")
        reader = getattr(body, "reader", None)
        if not (
            type(body) is Body
            and type(reader) is LengthReader
            and type(getattr(reader, "unreader", None)) is SocketUnreader
            and isinstance(getattr(reader, "length", None), int)
            and hasattr(reader.unreader, "take_buffered")
            and body.buf.tell() == 0  # nothing read through gunicorn's own buffers yet
            and getattr(request, "_read_started", False) is False
        ):
            return None
        return cls(body, reader, sock)

    def readinto(self, buffer):
        want = min(len(buffer), self._reader.length)
        if want <= 0:
            return 0
        try:
            got = self._take_buffered(buffer, want) or self._sock.recv_into(buffer, want)
        except Exception:
            self._body.failed = True  # where the next request starts is unknown now
            raise
        self._reader.length -= got
        return got

    def read(self, size):
        """For callers that want ``bytes`` (the S3 upload): one copy more than ``readinto``."""
        buffer = bytearray(max(0, min(size, self._reader.length)))
        del buffer[self.readinto(memoryview(buffer)) :]
        return bytes(buffer)

    def _take_buffered(self, buffer, want):
        """Bytes the parser read ahead with the headers (or before: a pipelined client)."""
        pending = self._unreader.take_buffered()
        if not pending:
            return 0
        got = min(len(pending), want)
        buffer[:got] = pending[:got]
        if got < len(pending):
            self._unreader.unread(pending[got:])
        return got
