"""``portal.health.lanes.lane_for`` on ``Content-Length`` values the first pins left out:
an empty value announces no body (the usual pool), spaces around a number are not part
of it, and a tus request with a body still takes its lane."""

import re
import socket
import time

import pytest

from portal.health.lanes import TUS_LANE, TUS_PREFIX, lane_for
from tests.health_helpers import Server, base_env

UPLOAD = f"{TUS_PREFIX}0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


@pytest.mark.parametrize("value", ["", " ", "0", "  0  ", "\t0"])
def test_a_tus_request_whose_length_is_empty_or_zero_takes_the_usual_pool(value):
    """No body announced: the request is short and must not wait behind uploads for a
    tus-lane thread (an empty ``Content-Length`` is no body either)."""
    head = f"PATCH {UPLOAD} HTTP/1.1\r\nHost: x\r\nContent-Length:{value}\r\n\r\n".encode()
    assert lane_for(head) is None


@pytest.mark.parametrize("value", ["1", " 10 ", "5242880"])
def test_a_tus_request_with_a_length_takes_the_tus_lane(value):
    """Any other length is a body: the upload streams on a tus-lane thread."""
    head = f"PATCH {UPLOAD} HTTP/1.1\r\nHost: x\r\ncontent-length: {value}\r\n\r\n".encode()
    assert lane_for(head) == TUS_LANE


def pipelined(port, requests, limit=8.0):
    """Send ``requests`` in one write; the status codes answered within ``limit`` s."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=limit)
    deadline = time.monotonic() + limit
    answer = b""
    try:
        sock.sendall(b"".join(requests))
        while answer.count(b"HTTP/1.1 ") < len(requests) and time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            answer += chunk
    finally:
        sock.close()
    return re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)


@pytest.mark.slow
def test_a_request_pipelined_behind_a_probe_is_answered_at_once(portal_storage, tmp_path):
    """The parser read the next request along with the probe: its bytes are no longer on
    the socket, so the worker must not peek there and wait (until keepalive closes the
    connection); the usual pool answers it from the parser's buffer."""
    server = Server(base_env(portal_storage), tmp_path / "g.log")
    try:
        started = time.monotonic()
        statuses = pipelined(
            server.port,
            [
                b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                b"GET /api/v1/uploads/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            ],
        )
        elapsed = time.monotonic() - started
    finally:
        server.stop()

    assert statuses == [b"200", b"401"]
    assert elapsed < 3


@pytest.mark.slow
def test_a_connection_that_sends_nothing_is_closed_after_keepalive(portal_storage, tmp_path):
    """A connection with no byte waits in the poller only ``keepalive`` seconds (5, as
    gunicorn closes late connections), then is closed: idle sockets do not pile up."""
    server = Server(base_env(portal_storage), tmp_path / "g.log")
    try:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=15)
        started = time.monotonic()
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False
        finally:
            sock.close()
        waited = time.monotonic() - started
    finally:
        server.stop()

    assert closed
    assert 4 < waited < 9
