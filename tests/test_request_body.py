"""``portal.request_body`` against gunicorn's own HTTP/1.1 parser on a real socket pair.

The reader takes a part's bytes from gunicorn's socket directly; what it must leave
behind is a parser that still finds the next request exactly where it starts.
``tests/test_upload_gunicorn.py`` runs the same through a whole gunicorn server.
"""

import os
import socket
import threading

import pytest
from django.test import RequestFactory

from portal import request_body
from portal.storage.streams import BLOCK_BYTES, BlockReader
from tests import fixtures
from tests.request_body_helpers import parse, read_all

sockets = fixtures.sockets  # a fixture of every module; named here for older imports


def test_reads_the_body_from_the_socket_and_leaves_the_next_request(sockets):
    server, client = sockets
    body = os.urandom(200_000)
    client.sendall(
        b"PUT /part HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body
        + b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    parser, request = parse(server)
    reader = request_body.body_reader(request)
    assert type(reader).__name__ == "_GunicornBody"
    assert read_all(reader) == body
    assert reader.readinto(memoryview(bytearray(10))) == 0
    assert parser.finish_body() is True
    following = next(parser)
    assert (following.method, following.path) == ("GET", "/next")


def test_blocks_are_filled_however_little_each_read_of_the_socket_gives(sockets):
    """A socket's buffer holds less than a block, so one read can never fill one: the
    part's blocks (each a write and a hash hand-off) are whole all the same."""
    server, client = sockets
    body = os.urandom(3 * BLOCK_BYTES + 12_345)
    assert server.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < BLOCK_BYTES
    assert client.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) < BLOCK_BYTES
    client.sendall(b"PUT /part HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
    sender = threading.Thread(target=client.sendall, args=(body,))
    sender.start()
    try:
        _, request = parse(server)
        reader = BlockReader(request_body.body_reader(request), limit=len(body))
        blocks = []
        while block := reader.read_block():
            blocks.append(bytes(block))
    finally:
        sender.join(timeout=10)
    assert [len(b) for b in blocks] == [BLOCK_BYTES] * 3 + [12_345]
    assert b"".join(blocks) == body


def test_a_body_cut_short_ends_early_and_the_rest_is_not_invented(sockets):
    server, client = sockets
    client.sendall(b"PUT /part HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b"z" * 1234)
    client.shutdown(socket.SHUT_WR)
    _, request = parse(server)
    assert read_all(request_body.body_reader(request)) == b"z" * 1234


def test_read_gives_bytes_for_callers_that_want_them(sockets):
    server, client = sockets
    client.sendall(b"PUT /p HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabcdefGET")
    _, request = parse(server)
    reader = request_body.body_reader(request)
    assert (reader.read(4), reader.read(100), reader.read(100)) == (b"abcd", b"ef", b"")


def test_a_body_already_read_through_django_is_not_taken_from_the_socket(sockets):
    server, client = sockets
    client.sendall(b"PUT /p HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabcdef")
    _, request = parse(server)
    assert request.read(2) == b"ab"
    reader = request_body.body_reader(request)
    assert type(reader).__name__ == "_DjangoBody"
    assert read_all(reader) == b"cdef"


def test_other_servers_go_through_django(rf: RequestFactory):
    request = rf.put("/p", data=b"0123456789", content_type="application/octet-stream")
    reader = request_body.body_reader(request)
    assert type(reader).__name__ == "_DjangoBody"
    assert read_all(reader, block=3) == b"0123456789"


def test_a_socket_that_fails_mid_body_marks_gunicorns_body_failed(sockets):
    """Where the next request starts is unknown then: gunicorn must not reuse the socket."""
    server, client = sockets
    client.sendall(b"PUT /p HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n")
    _, request = parse(server)
    reader = request_body.body_reader(request)
    server.shutdown(socket.SHUT_RDWR)
    server.close()
    with pytest.raises(OSError):
        reader.readinto(memoryview(bytearray(6)))
    assert request.META["wsgi.input"].failed is True


def test_a_chunked_body_goes_through_django(sockets):
    server, client = sockets
    client.sendall(
        b"PUT /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\nabcd\r\n2\r\nef\r\n0\r\n\r\n"
    )
    _, request = parse(server)
    assert type(request_body.body_reader(request)).__name__ == "_DjangoBody"  # (tus: 411)
