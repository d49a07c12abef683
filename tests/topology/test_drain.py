"""Graceful drain with the real gunicorn: SIGTERM, a second SIGTERM, the maintenance file.

The server is gunicorn with the project's gunicorn.conf.py in Prod behind a proxy; the
test talks to it directly (as nginx would, with X-Forwarded-Proto) so that a part body
can still be streaming when the listeners close: nginx would have buffered it.
"""

import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import time

import pytest
from django.core.management import call_command

from portal.models import UploadPart, UploadSession
from portal.services.sessions import create_session
from tests.conftest import PYTHON, ROOT
from tests.topology.programs import SERVER_NAME, Gunicorn, http_get, wait_for

pytestmark = [pytest.mark.topology, pytest.mark.slow]

CHUNK = 256 * 1024
PROXIED = {"X-Forwarded-Proto": "https"}


def probe(server, path):
    status, headers, body = http_get(server.port, path)
    return status, headers.get("X-Portal-Drain"), json.loads(body)


def put_part(server, token, session_id, number, body):
    """PUT a whole part on a fresh connection; the status."""
    sock = open_part(server, token, session_id, number, len(body))
    sock.sendall(body)
    return read_status(sock)


def open_part(server, token, session_id, number, length):
    sock = socket.create_connection(("127.0.0.1", server.port), 10)
    sock.sendall(
        f"PUT /api/v1/uploads/sessions/{session_id}/parts/{number} HTTP/1.1\r\n"
        f"Host: {SERVER_NAME}\r\nX-Forwarded-Proto: https\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {length}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    return sock


def read_status(sock):
    received = b""
    while b"\r\n\r\n" not in received and (chunk := sock.recv(65536)):
        received += chunk
    sock.close()
    return int(received.split(b" ", 2)[1])


def answers(server, path):
    try:
        http_get(server.port, path, timeout=1)
    except OSError:
        return False
    return True


def test_sigterm_drains_then_finishes_a_part_still_streaming(prod, user, api_token, tmp_path):
    drain_seconds = 2
    server = Gunicorn({**prod, "PORTAL_DRAIN_SECONDS": str(drain_seconds)}, tmp_path / "g.log")
    session, _ = create_session(
        user, {"filename": "drain.bin", "size_bytes": 2 * CHUNK, "chunk_size_bytes": CHUNK}
    )
    data = os.urandom(2 * CHUNK)
    streaming = open_part(server, api_token, session.pk, 1, CHUNK)
    streaming.sendall(data[: CHUNK // 2])
    assert probe(server, "/ready")[0] == 200

    sent_at = time.monotonic()
    server.send(signal.SIGTERM)
    wait_for(lambda: probe(server, "/ready")[0] == 503, 2, "/ready 503")
    # Every worker answers so, at once, and keeps serving everything else.
    for _ in range(6):
        assert probe(server, "/ready") == (
            503,
            "shutdown",
            {"status": "draining", "reason": "shutdown"},
        )
    assert probe(server, "/health") == (200, None, {"status": "ok"})
    assert put_part(server, api_token, session.pk, 2, data[CHUNK:]) == 201

    # Then gunicorn stops: no new request is served once each worker has taken the
    # master's SIGTERM (the workers still hold the listening socket until they exit, so
    # the kernel accepts connections nobody answers; the balancer stopped sending them
    # seconds ago)...
    wait_for(lambda: "drain over" in server.output(), drain_seconds + 3, "the drain's end")
    drained_for = time.monotonic() - sent_at
    assert drain_seconds - 0.2 <= drained_for <= drain_seconds + 2, drained_for
    wait_for(lambda: not answers(server, "/health"), 3, "new requests left unanswered")
    # ...but finishes the part that was still streaming, and stores it.
    streaming.sendall(data[CHUNK // 2 : CHUNK])
    assert read_status(streaming) == 201
    assert server.wait_stopped(15) == 0

    parts = UploadPart.objects.filter(session=session).order_by("part_number")
    expected = [hashlib.sha256(data[:CHUNK]).hexdigest(), hashlib.sha256(data[CHUNK:]).hexdigest()]
    assert [p.sha256 for p in parts] == expected
    assert UploadSession.objects.get(pk=session.pk).completed_parts == 2

    records = server.records()
    messages = [r["message"] for r in records if r["logger"] == "gunicorn.error"]
    assert any(m.startswith("draining: /ready answers 503 for 2s") for m in messages)
    assert "drain over: closing the listeners, finishing requests" in messages
    # A planned drain is not an error: the 503 probes are not even logged.
    assert [r for r in records if r["level"] in ("ERROR", "CRITICAL")] == []
    assert not [r for r in records if r.get("path") == "/ready"]


def test_a_second_sigterm_stops_without_waiting(prod, tmp_path):
    server = Gunicorn({**prod, "PORTAL_DRAIN_SECONDS": "60"}, tmp_path / "g.log")
    server.send(signal.SIGTERM)
    wait_for(lambda: probe(server, "/ready")[0] == 503, 2, "/ready 503")
    sent_at = time.monotonic()
    server.send(signal.SIGTERM)
    assert server.wait_stopped(10) == 0
    assert time.monotonic() - sent_at < 5


def test_maintenance_file_drains_until_removed(prod, user, api_token, tmp_path):
    server = Gunicorn(prod, tmp_path / "g.log")

    def portal_drain(action):
        output = io.StringIO()
        call_command("portal_drain", action, stdout=output)
        return output.getvalue()

    try:
        assert portal_drain("status").startswith("serving:")
        # The command line, with the instance's environment, as an operator runs it.
        started = subprocess.run(
            [PYTHON, "manage.py", "portal_drain", "start"],
            cwd=ROOT, env=prod, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert started.returncode == 0 and started.stdout.startswith("draining:"), started
        for _ in range(6):
            assert probe(server, "/ready") == (
                503,
                "maintenance",
                {"status": "draining", "reason": "maintenance"},
            )
        assert probe(server, "/health")[0] == 200
        session, _ = create_session(
            user, {"filename": "m.bin", "size_bytes": CHUNK, "chunk_size_bytes": CHUNK}
        )
        assert put_part(server, api_token, session.pk, 1, os.urandom(CHUNK)) == 201
        assert portal_drain("status").startswith("draining:")

        assert portal_drain("stop").startswith("serving:")
        assert probe(server, "/ready")[0] == 200
        assert "was not there" in portal_drain("stop")
    finally:
        server.stop()
