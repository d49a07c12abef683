"""``portal.httpclient.KeepAliveConnection`` against a real peer on loopback: a call's own
deadline (``portal_upload`` gives a large part more time than its other requests). The
keep-alive race and the trickled answer: ``tests/test_outbox.py``,
``tests/test_outbox_peers.py``."""

import time

import pytest

from portal.httpclient import KeepAliveConnection
from tests.peers import LoopbackServer, read_head


class Peer(LoopbackServer):
    """Answers a connection's first request ``200 ok`` after ``delay`` seconds."""

    CONNECTION_TIMEOUT = 5

    def __init__(self, delay=0.0):
        super().__init__()
        self.delay = delay

    def answer(self, conn):
        head = read_head(conn)
        if not head:
            return
        time.sleep(self.delay)
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
