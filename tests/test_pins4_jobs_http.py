"""Pins for the jobs area, fourth round (issue #31): the HTTP client lets go of its socket
when an exchange gives up."""

import http.client
import threading

import pytest

from portal.httpclient import KeepAliveConnection
from tests.peers import LoopbackServer


class SilentUntilHangUp(LoopbackServer):
    """Reads the request, never answers, and records whether the client hung up (EOF)
    within a bounded wait."""

    def __init__(self):
        super().__init__()
        self.request_read = threading.Event()
        self.saw_hang_up = threading.Event()

    def answer(self, conn):
        conn.recv(4096)
        self.request_read.set()
        conn.settimeout(1.5)
        if conn.recv(4096) == b"":
            self.saw_hang_up.set()


def test_a_timed_out_answer_closes_the_socket_while_the_error_is_still_held():
    """A caller that keeps the ``TimeoutError`` (to log or retry later) must not keep the
    connection's socket open with it: the peer sees the hang-up at once, no file
    descriptor leaks per timed-out call."""
    with SilentUntilHangUp() as server:
        connection = KeepAliveConnection("http", "127.0.0.1", server.port, timeout=0.3)
        with pytest.raises(TimeoutError) as failed:
            connection.exchange("GET", "/", headers={})
        assert server.request_read.wait(2)
        assert server.saw_hang_up.wait(3), "the socket stayed open after the timeout"
        assert "did not answer within 0.3 s" in str(failed.value)


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
OK_THEN_CLOSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


class Scripted(LoopbackServer):
    """Answers the n-th connection's first request with ``answers[n]`` (None: hang up
    without a word), then closes it."""

    def __init__(self, *answers):
        super().__init__()
        self.answers = answers

    def answer(self, conn):
        conn.recv(4096)
        reply = self.answers[min(self.connections, len(self.answers)) - 1]
        if reply is not None:
            conn.sendall(reply)


def test_a_fresh_connection_dropped_unanswered_is_not_sent_again():
    """Only a reused keep-alive connection that turns out stale earns a silent resend; after
    the server closed the last one, the next request goes on a fresh connection, and a
    hang-up there is the caller's failure (a second POST could deliver twice)."""
    with Scripted(OK_THEN_CLOSE, None, OK) as server:
        connection = KeepAliveConnection("http", "127.0.0.1", server.port, timeout=2)
        assert connection.exchange("POST", "/", headers={}, body=b"1").status == 200
        with pytest.raises(ConnectionError):
            connection.exchange("POST", "/", headers={}, body=b"2")
        connection.close()
    assert server.connections == 2


def test_after_a_garbled_answer_the_next_exchange_starts_afresh():
    """An answer that is no HTTP fails that exchange only: the connection is dropped, so
    the next one does not inherit a half-finished request."""
    with Scripted(b"garbage\r\n\r\n", OK) as server:
        connection = KeepAliveConnection("http", "127.0.0.1", server.port, timeout=2)
        with pytest.raises(http.client.HTTPException):
            connection.exchange("GET", "/", headers={})
        answer = connection.exchange("GET", "/", headers={})
        connection.close()
    assert (answer.status, answer.body, server.connections) == (200, b"ok", 2)
