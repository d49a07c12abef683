"""``portal.health.lanes``: which requests take a probe lane, and the lanes in a real server.

The server test fills every API thread of a gunicorn worker with clients that never finish
their request (what slow uploads or a hanging database do to a worker); the probes must
still answer at once, on their own threads.
"""

import socket
import time

import pytest

from portal.health.lanes import probe_path
from tests.test_health_server import Server, base_env

THREADS = 4


@pytest.mark.parametrize(
    ("head", "path"),
    [
        (b"GET /health HTTP/1.1\r\nHost: 10.0.3.7\r\n\r\n", "/health"),
        (b"HEAD /ready HTTP/1.1\r\nHost: x\r\nUser-Agent: kube-probe/1.30\r\n\r\n", "/ready"),
        (b"GET /ready?full=1 HTTP/1.0\r\n\r\n", "/ready"),
        (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /sessions HTTP/1.1\r\n", "/health"),
    ],
)
def test_a_complete_probe_takes_its_lane(head, path):
    assert probe_path(head) == path


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"GET /health HTTP/1.1\r\nHost: x\r\n",  # headers still arriving
        b"GET /health",
        b"POST /health HTTP/1.1\r\n\r\n",
        b"GET /health/ HTTP/1.1\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\n\r\n",
        b"GET /api/v1/uploads/sessions HTTP/1.1\r\n\r\n",
        b"GET http://x/health HTTP/1.1\r\n\r\n",
        b"GET  /health HTTP/1.1\r\n\r\n",
        b"GET /health HTTP/1.1\r\nContent-Length: 100000\r\n\r\n",
        b"GET /ready HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET /health HTTP/1.1\r\nX-" + b"a" * 5000 + b"\r\n\r\n",
    ],
)
def test_anything_else_takes_the_usual_pool(head):
    assert probe_path(head[:4096]) is None


def stuck_client(port):
    """A connection whose request never ends: it holds one API thread of the worker."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /api/v1/uploads/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    return sock


@pytest.mark.slow
def test_probes_answer_while_every_api_thread_is_held(portal_storage, tmp_path):
    server = Server(base_env(portal_storage, GUNICORN_THREADS=str(THREADS)), tmp_path / "g.log")
    stuck = []
    try:
        stuck = [stuck_client(server.port) for _ in range(THREADS + 2)]
        time.sleep(0.5)  # let the worker hand each one to a thread
        # /ready within its budget (PORTAL_HEALTH_CHECK_TIMEOUT_SECONDS=1, + 1 s): 200, or
        # 503 when a slow host makes a storage check miss it.
        for path, statuses, budget in (
            ("/health", {200}, 1),
            ("/ready", {200, 503}, 1 + 1 + 0.5),
            ("/health", {200}, 1),
        ):
            started = time.monotonic()
            status, _ = server.get(path, timeout=5)
            assert status in statuses, path
            assert time.monotonic() - started < budget, path
    finally:
        for sock in stuck:
            sock.close()
        server.stop()
