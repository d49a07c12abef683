"""Logs (``portal.observability``, ``boot.logging``): what a record must not carry."""

import logging
import socket

from django.core.servers.basehttp import WSGIRequestHandler

from tests.test_pins_ops_logs import capture  # noqa: F401  (fixture)


def runserver_line(status):
    """Django's own runserver access line (``WSGIRequestHandler.log_message``), as logged for
    a request on a real socket."""
    handler = WSGIRequestHandler.__new__(WSGIRequestHandler)
    handler.request = socket.socket()
    try:
        handler.log_message('"%s" %s %s', "GET /api/v1/files HTTP/1.1", str(status), "17")
    finally:
        handler.request.close()


def test_runserver_lines_carry_neither_its_server_time_nor_the_socket(capture):  # noqa: F811
    """``server_time`` repeats the timestamp in a local format and the socket is no field: both
    are dropped, so a development line has one time, in UTC, like every other line."""
    logger, records = capture()
    server = logging.getLogger("django.server")
    (handler,) = logger.handlers
    level, server.level = server.level, logging.INFO
    server.addHandler(handler)
    try:
        runserver_line(200)
    finally:
        server.removeHandler(handler)
        server.setLevel(level)
    [record] = records()
    assert record["logger"] == "django.server"
    assert record["status_code"] == 200
    assert "server_time" not in record
    assert "request" not in record
    assert record["timestamp"].endswith("+00:00")
