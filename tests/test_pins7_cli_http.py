"""Pins for the HTTP client, seventh round (issue #31): how much of an answer
``portal.httpclient.KeepAliveConnection`` reads when the caller sets no limit."""

from portal.httpclient import KeepAliveConnection
from tests.peers import LoopbackServer, read_head

MIB = 2**20


class Sized(LoopbackServer):
    """Answers a connection's first request with ``size`` bytes of ``x``, then closes."""

    def __init__(self, size):
        super().__init__()
        self.size = size

    def answer(self, conn):
        if read_head(conn):
            head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            conn.sendall(head % self.size + b"x" * self.size)


def fetch(size):
    with Sized(size) as peer:
        connection = KeepAliveConnection("http", "127.0.0.1", peer.port, timeout=5)
        answer = connection.exchange("GET", "/", headers={"Host": "peer"})
        connection.close()
    return answer


def test_an_answer_is_read_up_to_one_mebibyte_by_default():
    """Without ``read_limit`` an answer of 1 MiB comes whole (a portal error page, a
    runner's report), and a larger one is cut at 1 MiB, never read without bound."""
    assert len(fetch(MIB).body) == MIB
    assert len(fetch(MIB + 100).body) == MIB
