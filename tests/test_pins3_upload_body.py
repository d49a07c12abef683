"""Pins for reading a part's body straight from gunicorn's socket (issue #31, the upload
area, third round): the last byte of a body is read like any other."""

from portal import request_body
from tests.request_body_helpers import parse, read_all


def test_a_read_that_asks_for_the_last_single_byte_gets_it(sockets):
    """7 bytes read 3 at a time: the third read wants exactly one byte. Losing it would
    store a part one byte short (``incomplete_part`` on every such upload)."""
    server, client = sockets
    client.sendall(b"PUT /p HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\nabcdefgGET")
    _, request = parse(server)
    reader = request_body.body_reader(request)
    assert type(reader).__name__ == "_GunicornBody"
    assert read_all(reader, block=3) == b"abcdefg"


def test_a_one_byte_body_is_read(sockets):
    server, client = sockets
    client.sendall(b"PUT /p HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nz")
    _, request = parse(server)
    assert request_body.body_reader(request).read(10) == b"z"


def test_a_body_django_has_read_whole_is_read_again_through_django(sockets):
    """Once ``request.body`` was read, gunicorn's socket has nothing left (and its buffer
    is empty): the part's bytes are Django's copy, not an empty read of the socket."""
    server, client = sockets
    client.sendall(b"PUT /p HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabcdef")
    _, request = parse(server)
    assert request.body == b"abcdef"
    reader = request_body.body_reader(request)
    assert type(reader).__name__ == "_DjangoBody"
    assert read_all(reader) == b"abcdef"
