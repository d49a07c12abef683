"""Pins for the ops area (issue #31, second round): ``ProbeLaneWorker`` in a real gunicorn
(``portal.health.lanes``) serves a connection whose request arrives after the worker first
looked at it (no byte yet: it waits in the poller, not on a thread)."""

import socket
import time

import pytest

from tests.health_helpers import Server, base_env

pytestmark = pytest.mark.slow


def late_request(port, request, idle=0.3):
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        time.sleep(idle)  # the worker accepted it and found no byte to peek at
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer.split(b"\r\n", 1)[0]
    finally:
        sock.close()


def test_a_request_that_arrives_late_is_answered(portal_storage, tmp_path):
    server = Server(base_env(portal_storage), tmp_path / "g.log")
    try:
        for request in (
            b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            b"GET /api/v1/uploads/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        ):
            started = time.monotonic()
            status_line = late_request(server.port, request)
            assert status_line.startswith(b"HTTP/1.1 "), (request, status_line)
            assert status_line.split()[1] in (b"200", b"401"), status_line
            assert time.monotonic() - started < 3
    finally:
        server.stop()
