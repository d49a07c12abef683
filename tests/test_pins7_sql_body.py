"""Reading a part's body from gunicorn's socket (``portal.request_body``) where the first
pins did not look: bytes already pulled into gunicorn's own buffer by a direct read of
``wsgi.input``, and a ``read`` asking for far more than the body holds."""

import os
import sys

from portal import request_body
from tests import fixtures
from tests.request_body_helpers import parse, read_all

sockets = fixtures.sockets


def test_bytes_in_gunicorns_buffer_are_not_skipped(sockets):
    """Something read ``wsgi.input`` directly (gunicorn buffered a 1 KiB read of it): the
    rest of the body comes through Django, the buffered bytes included, none lost."""
    server, client = sockets
    body = os.urandom(5000)
    client.sendall(b"PUT /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + body)
    _, request = parse(server)
    assert request.META["wsgi.input"].read(3) == body[:3]

    reader = request_body.body_reader(request)

    assert type(reader).__name__ == "_DjangoBody"
    assert read_all(reader) == body[3:]


def test_a_read_of_more_than_the_body_allocates_only_the_body(sockets):
    """``read(n)`` sizes its buffer by what is left of the body, not by ``n``: a caller
    asking for "everything" (a huge ``n``) gets the body, not a MemoryError."""
    server, client = sockets
    client.sendall(b"PUT /p HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabcdefGET")
    _, request = parse(server)
    reader = request_body.body_reader(request)

    assert type(reader).__name__ == "_GunicornBody"
    assert reader.read(sys.maxsize) == b"abcdef"
    assert reader.read(sys.maxsize) == b""


def test_a_single_byte_left_over_in_gunicorns_read_ahead_is_kept(sockets):
    """The parser read the body ahead with the headers; a read one byte short of it must
    put that one byte back (it is the body's last), not drop it."""
    server, client = sockets
    client.sendall(b"PUT /p HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabcdef")
    _, request = parse(server)
    reader = request_body.body_reader(request)

    assert type(reader).__name__ == "_GunicornBody"
    assert read_all(reader, block=5) == b"abcdef"


def test_one_byte_of_the_next_request_read_ahead_is_left_for_it(sockets):
    """A pipelined client: the read-ahead holds the body and one byte of the next request;
    that byte goes back to the parser, which then reads the next request whole."""
    server, client = sockets
    client.sendall(b"PUT /p HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcdG")
    parser, request = parse(server)
    reader = request_body.body_reader(request)

    assert read_all(reader) == b"abcd"
    client.sendall(b"ET /next HTTP/1.1\r\nHost: x\r\n\r\n")
    assert parser.finish_body() is True
    following = next(parser)
    assert (following.method, following.path) == ("GET", "/next")
