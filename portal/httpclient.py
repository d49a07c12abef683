"""Calls to another HTTP service (the runner, the portal's API): one keep-alive connection
with a deadline per exchange, and the delay between retries."""

import http.client
import io
import random
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

STALE_CONNECTION_ERRORS = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
DEFAULT_READ_LIMIT = 1024 * 1024


def http_url_problem(value):
    """Why ``value`` is no URL that ``http.client`` and botocore can use ("" when it is).

    A request line carries ASCII only, so anything else must be percent-encoded.
    """
    try:
        parts = urlsplit(value)
    except ValueError:
        return "must be an http:// or https:// URL with a host"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        return "must have a numeric port from 1 to 65535"
    if any(ord(char) < 33 or ord(char) > 126 for char in value):
        return "must be ASCII without spaces (percent-encode other characters)"
    return ""


def backoff_delay(attempts_before, *, base, cap, rand=random.random):
    """Seconds before the next attempt: ``base``, ``2 * base``, ... up to ``cap``, after
    ``attempts_before`` failed ones. Equal jitter (half fixed, half random) spreads a burst
    of failures so that they do not all come back in the same second."""
    exponent = min(attempts_before, 62)
    delay = min(cap, base * (2**exponent))
    return delay / 2 + rand() * delay / 2


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    body: bytes


class TLSFailed(OSError):
    """The TLS handshake failed (a certificate that does not verify, a peer that does not
    speak TLS): retrying does not help."""


class KeepAliveConnection:
    """One persistent connection to ``host:port``, opened again after any failure.

    Each socket operation of an exchange gets only the time left of its deadline, so a
    peer that trickles its answer cannot hold the caller longer than that.
    """

    def __init__(self, scheme, host, port, *, timeout, blocksize=8192):
        self._tls = _tls_context() if scheme == "https" else None
        default_port = http.client.HTTP_PORT if self._tls is None else http.client.HTTPS_PORT
        self.host, self.port = host, port or default_port
        self.timeout = timeout
        self.blocksize = blocksize
        self._conn = None
        self._used = False

    def exchange(
        self, method, path, *, headers, body=None, read_limit=None, while_waiting=None, timeout=None
    ):
        """``Answer`` within ``timeout`` seconds (connect, TLS, request and answer), else
        ``TimeoutError`` saying which phase; ``OSError``/``HTTPException`` for a failure.

        ``body`` is bytes or a callable returning a fresh file-like body (a retry needs it
        again); ``while_waiting`` runs while the server works on the request.
        """
        seconds = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + seconds
        reused = self._conn is not None and self._used
        args = (method, path, headers, body, read_limit, while_waiting, deadline)
        try:
            try:
                return self._exchange(*args)
            except STALE_CONNECTION_ERRORS:
                if not reused:
                    raise
                self.close()
                return self._exchange(*args)
        except TimeoutError as exc:
            phase = self._conn.phase if self._conn is not None else "answer"
            self.close()
            raise TimeoutError(self._timeout_message(phase, seconds)) from exc
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _timeout_message(self, phase, seconds):
        peer = f"{self.host}:{self.port}"
        if phase == "tls":
            return (
                f"TLS handshake with {peer} did not finish within {seconds:g} s: "
                "does the server speak https on that port?"
            )
        if phase == "connect":
            return f"could not connect to {peer} within {seconds:g} s"
        return f"{peer} did not answer within {seconds:g} s"

    def _exchange(self, method, path, headers, body, read_limit, while_waiting, deadline):
        if self._conn is None:
            self._conn = _HTTPConnection(
                self.host, self.port, timeout=self.timeout, blocksize=self.blocksize, tls=self._tls
            )
            self._used = False
        self._conn.deadline = deadline
        if self._conn.sock is None:
            self._conn.connect()  # failures here are the connection's, never an early answer
        payload = body() if callable(body) else body
        try:
            try:
                self._conn.request(method, path, body=payload, headers=headers)
            except TimeoutError:
                raise
            except OSError:
                pass  # the server may have answered early (e.g. 410 before the body) and closed
            if while_waiting is not None:
                while_waiting()
            response = self._conn.getresponse()
            self._used = True
            data = response.read(read_limit or DEFAULT_READ_LIMIT)
        finally:
            if hasattr(payload, "close"):
                payload.close()
        if not response.isclosed() or response.will_close:
            self.close()  # an oversized body or "Connection: close": start afresh next time
        return Answer(response.status, response.reason, data)


class _TimedReader(io.RawIOBase):
    """The socket's reads, each allowed only the time left of the exchange."""

    def __init__(self, sock, time_left):
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)
        self._time_left = time_left

    def readable(self):
        return True

    def readinto(self, buffer):
        self._sock.settimeout(self._time_left())
        return self._raw.readinto(buffer)

    def close(self):
        self._raw.close()
        super().close()


class _TimedSocket:
    """What ``HTTPResponse`` reads its answer through: a buffered ``_TimedReader``."""

    def __init__(self, sock, time_left):
        self._sock, self._time_left = sock, time_left

    def makefile(self, mode):
        return io.BufferedReader(_TimedReader(self._sock, self._time_left))


class _HTTPConnection(http.client.HTTPConnection):
    """Connect, TLS handshake (with ``tls``), writes and reads share one ``deadline``
    (``time.monotonic()``), set before each exchange; ``phase`` says what was under way
    when it passed."""

    def __init__(self, *args, tls, **kwargs):
        super().__init__(*args, **kwargs)
        self.tls = tls
        self.deadline = time.monotonic() + self.timeout
        self.phase = "connect"

    def response_class(self, sock, *args, **kwargs):
        return http.client.HTTPResponse(_TimedSocket(sock, self.time_left), *args, **kwargs)

    def time_left(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        return left

    def connect(self):
        self.phase = "connect"
        self.timeout = self.time_left()
        super().connect()
        if self.tls is not None:
            self.phase = "tls"
            self._handshake()
        self.phase = "answer"

    def _handshake(self):
        """A failed handshake raises ``TLSFailed`` naming the cause (a timeout stays one)."""
        peer = f"{self.host}:{self.port}"
        try:
            self.sock.settimeout(self.time_left())
            self.sock = self.tls.wrap_socket(self.sock, server_hostname=self.host)
        except OSError as exc:
            self.sock = None
            if isinstance(exc, ssl.SSLCertVerificationError):
                raise TLSFailed(
                    f"TLS with {peer}: certificate verify failed: {exc.verify_message or exc}"
                ) from exc
            if isinstance(exc, TimeoutError):
                raise
            reason = exc.reason.lower().replace("_", " ") if getattr(exc, "reason", None) else exc
            raise TLSFailed(
                f"TLS handshake with {peer} failed ({reason}): "
                "does the server speak https on that port?"
            ) from exc

    def send(self, data):
        if not hasattr(data, "read"):
            self.sock.settimeout(self.time_left())
            return super().send(data)
        while block := data.read(self.blocksize):
            self.sock.settimeout(self.time_left())
            super().send(block)
        return None


def _tls_context():
    """The system's CAs (or ``SSL_CERT_FILE``), hostnames checked, as ``http.client``'s."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context
