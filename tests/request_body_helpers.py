"""A request read the way gunicorn hands it to Django, for the request-body tests; the
socket pair under it is the ``sockets`` fixture (``tests/fixtures.py``)."""

from django.core.handlers.wsgi import WSGIRequest
from gunicorn import http as gunicorn_http
from gunicorn.config import Config
from gunicorn.http import wsgi


def parse(server_sock):
    """gunicorn's parser over ``server_sock``, and a Django request for its first message."""
    cfg = Config()
    parser = gunicorn_http.get_parser(cfg, server_sock, ("127.0.0.1", 1))
    message = next(parser)
    _, environ = wsgi.create(message, server_sock, ("127.0.0.1", 1), ("127.0.0.1", 2), cfg)
    return parser, WSGIRequest(environ)


def read_all(reader, block=1000):
    buffer, out = memoryview(bytearray(block)), bytearray()
    while got := reader.readinto(buffer):
        out += buffer[:got]
    return bytes(out)
