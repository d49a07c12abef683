"""Pins for the jobs area, fourth round (issue #31): the HTTP client lets go of its socket
when an exchange gives up."""

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
