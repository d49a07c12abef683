"""``portal.httpclient.KeepAliveConnection`` against a real keep-alive peer on loopback: what
it reuses, what it cuts short, and what it closes."""

import io

from portal.httpclient import KeepAliveConnection
from tests.peers import LoopbackServer


class KeepAlivePeer(LoopbackServer):
    """Answers every request of a connection with ``answer_size`` bytes, keeping it open;
    records each request's body."""

    def __init__(self, answer_size=2):
        super().__init__()
        self.answer_size = answer_size
        self.bodies = []

    def answer(self, conn):
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(buffer) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            self.bodies.append(buffer[:length])
            buffer = buffer[length:]
            body = b"x" * self.answer_size
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


def test_a_file_body_is_sent_whole_in_blocks_and_closed_after_the_exchange():
    """A part streamed from a file: every byte reaches the peer, and the file the body
    callable opened is closed once the answer is in (no descriptor left per request)."""
    opened = []
    data = bytes(range(256)) * 100  # 25,600 bytes: several blocks of 8 KiB

    def body():
        opened.append(io.BytesIO(data))
        return opened[-1]

    with KeepAlivePeer() as peer:
        connection = KeepAliveConnection("http", "127.0.0.1", peer.port, timeout=5)
        headers = {"Host": "peer", "Content-Length": str(len(data))}
        answer = connection.exchange("PUT", "/part", headers=headers, body=body)
        connection.close()
    assert (answer.status, answer.body) == (200, b"xx")
    assert peer.bodies == [data]
    assert [file.closed for file in opened] == [True]


def test_an_answer_past_the_read_limit_is_cut_and_the_connection_not_reused():
    """A peer answering more than ``read_limit`` bytes gets only that many read; the rest is
    never read, so the next exchange must start on a fresh connection, not mid-answer."""
    with KeepAlivePeer(answer_size=100) as peer:
        connection = KeepAliveConnection("http", "127.0.0.1", peer.port, timeout=5)
        first = connection.exchange("GET", "/", headers={"Host": "peer"}, read_limit=10)
        second = connection.exchange("GET", "/", headers={"Host": "peer"}, read_limit=100)
        third = connection.exchange("GET", "/", headers={"Host": "peer"})
        connection.close()
    assert [len(a.body) for a in (first, second, third)] == [10, 100, 100]
    assert peer.connections == 2  # the first cut short; the second and third shared one


def test_while_waiting_runs_once_after_the_request_before_the_answer():
    """The dispatcher flushes its logs while the runner works: once per exchange, after the
    request went out (the peer has it) and before the answer is read."""
    seen = []
    with KeepAlivePeer() as peer:
        connection = KeepAliveConnection("http", "127.0.0.1", peer.port, timeout=5)
        answer = connection.exchange(
            "POST",
            "/hook",
            headers={"Host": "peer", "Content-Length": "5"},
            body=b"event",
            while_waiting=lambda: seen.append("waiting"),
        )
        connection.close()
    assert seen == ["waiting"]
    assert (answer.body, peer.bodies) == (b"xx", [b"event"])
