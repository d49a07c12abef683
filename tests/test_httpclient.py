"""``portal.httpclient.KeepAliveConnection`` against a real peer on loopback: a call's own
deadline (``portal_upload`` gives a large part more time than its other requests). The
keep-alive race and the trickled answer: ``tests/test_outbox.py``,
``tests/test_outbox_peers.py``."""

import contextlib
import socket
import threading
import time

import pytest

from portal.httpclient import KeepAliveConnection


class Peer:
    """Answers a connection's first request ``200 ok`` after ``delay`` seconds."""

    def __init__(self, delay=0.0):
        self.delay = delay
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                self._answer(conn)

    def _answer(self, conn):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                return
            head += chunk
        time.sleep(self.delay)
        with contextlib.suppress(OSError):  # the client gave up waiting
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def get(connection, **kwargs):
    return connection.exchange("GET", "/", headers={"Host": "peer"}, **kwargs)


def test_a_calls_own_timeout_outlasts_the_connections_default():
    with Peer(delay=0.6) as peer:
        connection = KeepAliveConnection("http", "127.0.0.1", peer.port, timeout=0.3)
        assert get(connection, timeout=5).body == b"ok"
        connection.close()


def test_a_calls_own_timeout_cuts_the_exchange_short():
    with Peer(delay=1.5) as peer:
        connection = KeepAliveConnection("http", "127.0.0.1", peer.port, timeout=30)
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=r"did not answer within 0\.3 s"):
            get(connection, timeout=0.3)
        assert time.monotonic() - started < 1.5
