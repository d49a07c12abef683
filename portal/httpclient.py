"""Calls to another HTTP service: one keep-alive connection, and the delay between retries.

Used by the outbox dispatcher (POSTs to the runner) and by ``portal_upload`` (the API
client). Both hold one persistent ``http.client`` connection and must tell the usual
keep-alive race (the server closed an idle connection just as we reused it) from a real
failure: that one is retried once on a fresh connection, anything else is the caller's.
"""

import http.client
import random
from dataclasses import dataclass
from urllib.parse import urlsplit

STALE_CONNECTION_ERRORS = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    BrokenPipeError,
)
DEFAULT_READ_LIMIT = 1024 * 1024


def http_url_problem(value):
    """Why ``value`` is no usable http(s) URL ("" when it is one).

    What ``http.client`` and botocore need later: an http or https scheme, a host, a
    numeric port from 1 to 65535 if there is one, and ASCII only (a request line cannot
    carry anything else: percent-encode it), no spaces or control characters.
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
    """Seconds to wait before the next attempt: exponential, capped, equal jitter.

    ``attempts_before`` is how many attempts preceded the failed one (0 for the first), so
    the first retry waits about ``base``, then ``2 * base``, ... up to ``cap``. Equal
    jitter (half fixed, half random) keeps at least half the backoff while spreading a
    burst of failures so they do not all come back in the same second.
    """
    exponent = min(attempts_before, 62)
    delay = min(cap, base * (2**exponent))
    return delay / 2 + rand() * delay / 2


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    body: bytes
    will_close: bool


class KeepAliveConnection:
    """One persistent connection to ``host:port``; reconnects after any failure.

    ``exchange`` sends one request and reads its answer. ``body`` is bytes, or a callable
    returning a fresh file-like body (a retry on a fresh connection needs the body again).
    ``while_waiting`` runs once per exchange after the request is written, while the
    server works on it: bookkeeping there costs no wall-clock time.
    """

    def __init__(self, scheme, host, port, *, timeout, blocksize=8192):
        self._cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        self.host, self.port = host, port
        self.timeout = timeout
        self.blocksize = blocksize
        self._conn = None
        self._used = False

    def exchange(self, method, path, *, headers, body=None, read_limit=None, while_waiting=None):
        """``Answer`` for one request; ``OSError``/``HTTPException`` when it failed."""
        reused = self._conn is not None and self._used
        try:
            try:
                return self._exchange(method, path, headers, body, read_limit, while_waiting)
            except STALE_CONNECTION_ERRORS:
                if not reused:
                    raise
                self.close()
                return self._exchange(method, path, headers, body, read_limit, while_waiting)
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def set_timeout(self, seconds):
        self.timeout = seconds
        if self._conn is not None:
            self._conn.timeout = seconds
            if self._conn.sock is not None:
                self._conn.sock.settimeout(seconds)

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _exchange(self, method, path, headers, body, read_limit, while_waiting):
        if self._conn is None:
            self._conn = self._cls(
                self.host, self.port, timeout=self.timeout, blocksize=self.blocksize
            )
            self._used = False
        payload = body() if callable(body) else body
        try:
            try:
                self._conn.request(method, path, body=payload, headers=headers)
            except OSError:
                if self._conn.sock is None:
                    raise
                # The server may have answered early (e.g. 410 before the body) and closed.
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
        return Answer(response.status, response.reason, data, response.will_close)
