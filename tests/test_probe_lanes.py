"""``portal.health.lanes``: which requests take a probe lane or the tus lane, and the lanes
in a real server.

The server tests fill every API thread of a gunicorn worker with clients that never finish
their request (what slow uploads or a hanging database do to a worker), or the tus lane
with PATCHes that trickle their bodies; the probes and the JSON API must still answer at
once, on their own threads.
"""

import http.client
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from portal.health.lanes import TUS_LANE, TUS_PREFIX, TUS_THREADS, lane_for
from tests.api_helpers import make_token
from tests.health_helpers import Server, base_env
from tests.topology.programs import Gunicorn, http_get

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
    assert lane_for(head) == path


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
    assert lane_for(head[:4096]) is None


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


UPLOAD = f"{TUS_PREFIX}0b7c6a52-4d5e-4f6a-8b9c-0d1e2f3a4b5c"
PATCH_HEAD = (
    f"PATCH {UPLOAD} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
    "Content-Type: application/offset+octet-stream\r\nContent-Length: 1073741824\r\n\r\n"
).encode()


@pytest.mark.parametrize(
    "head",
    [
        PATCH_HEAD,
        PATCH_HEAD + b"\0" * 3000,  # the body's first bytes came with the head
        f"PATCH {UPLOAD} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".encode(),
        f"POST {TUS_PREFIX} HTTP/1.1\r\nUpload-Length: 9\r\nContent-Length: 9\r\n\r\n".encode(),
        f"POST {UPLOAD} HTTP/1.1\r\nX-HTTP-Method-Override: PATCH\r\n".encode()
        + b"Content-Length: 5\r\n\r\n",
        f"PATCH {UPLOAD}?x=1 HTTP/1.0\r\ncontent-length:7\r\n\r\n".encode(),
    ],
)
def test_a_tus_body_takes_the_tus_lane(head):
    assert lane_for(head[:4096]) == TUS_LANE


@pytest.mark.parametrize(
    "head",
    [
        PATCH_HEAD[:-2],  # headers still arriving (trickled): the usual pool, as before
        f"PATCH {UPLOAD}".encode(),
        # No body: short requests (creation, an empty PATCH) never wait behind uploads.
        f"POST {TUS_PREFIX} HTTP/1.1\r\nUpload-Length: 9\r\n\r\n".encode(),
        f"POST {TUS_PREFIX} HTTP/1.1\r\nContent-Length: 0\r\n\r\n".encode(),
        f"PATCH {UPLOAD} HTTP/1.1\r\nUpload-Offset: 9\r\nContent-Length: 0\r\n\r\n".encode(),
        f"PATCH {UPLOAD} HTTP/1.1\r\nX-Content-Length: 9\r\n\r\n".encode(),
        *(
            f"{method} {UPLOAD} HTTP/1.1\r\nContent-Length: 9\r\n\r\n".encode()
            for method in ("GET", "HEAD", "DELETE", "OPTIONS", "PUT", "patch")
        ),
        b"PATCH /api/v1/tus HTTP/1.1\r\nContent-Length: 9\r\n\r\n",
        b"PATCH /api/v1/tusx/1 HTTP/1.1\r\nContent-Length: 9\r\n\r\n",
        b"PATCH /api/v1/uploads/sessions/1/parts/1 HTTP/1.1\r\nContent-Length: 9\r\n\r\n",
        b"PATCH /health HTTP/1.1\r\nContent-Length: 9\r\n\r\n",
        f"PATCH http://x{UPLOAD} HTTP/1.1\r\nContent-Length: 9\r\n\r\n".encode(),
        f"PATCH  {UPLOAD} HTTP/1.1\r\nContent-Length: 9\r\n\r\n".encode(),
        f"PATCH {UPLOAD}\r\nContent-Length: 9\r\n\r\n".encode(),
        f"PATCH {UPLOAD} HTTP/2.0\r\nContent-Length: 9\r\n\r\n".encode(),
        f"PATCH {UPLOAD} HTTP/1.1 extra\r\nContent-Length: 9\r\n\r\n".encode(),
        f"PATCH {UPLOAD} HTTP/1.1\r\nX-".encode() + b"a" * 5000 + b"\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ],
)
def test_anything_else_is_no_tus_body(head):
    assert lane_for(head[:4096]) is None


def test_a_probe_still_takes_its_own_lane():
    assert lane_for(b"GET /health HTTP/1.1\r\n\r\n" + PATCH_HEAD) == "/health"


def tus_request(port, method, path, token, body=b"", **headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0", **headers}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response
    finally:
        conn.close()


def trickling_patch(port, token, length):
    """A new tus upload whose one PATCH sent its head and 1,000 bytes: it holds a thread."""
    created = tus_request(port, "POST", TUS_PREFIX, token, **{"Upload-Length": str(length)})
    assert created.status == 201, created.status
    path = "/" + created.getheader("Location").split("/", 3)[3]
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Length: {length}\r\n"
        "Content-Type: application/offset+octet-stream\r\n\r\n".encode()
        + b"\0" * 1000
    )
    return sock


@pytest.mark.slow
def test_trickling_tus_bodies_leave_the_api_and_the_probes_their_threads(
    subprocess_env, user, tmp_path
):
    token = make_token(user)
    env = {**subprocess_env, "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "2"}
    server = Gunicorn(env, tmp_path / "g.log")
    streams = []
    try:
        # More than the tus lane holds: the last two wait for a tus thread, not an API one.
        streams = [trickling_patch(server.port, token, 1024 * 1024) for _ in range(TUS_THREADS + 2)]
        time.sleep(0.5)  # let the worker hand each one to a thread
        api = "/api/v1/uploads/sessions/00000000-0000-0000-0000-000000000000"  # no such session
        for path, wanted in (("/health", 200), (api, 404), ("/ready", 200)):
            started = time.monotonic()
            status = http_get(server.port, path, headers={"Authorization": f"Bearer {token}"})[0]
            assert (path, status) == (path, wanted)
            assert time.monotonic() - started < 2, path
        # The tus endpoint itself still answers what needs no body.
        assert tus_request(server.port, "OPTIONS", TUS_PREFIX, token).status == 204
    finally:
        for sock in streams:
            sock.close()
        server.stop()


@pytest.mark.slow
def test_a_quitting_worker_goes_while_an_upload_trickles_on_its_lane(
    subprocess_env, user, tmp_path
):
    """SIGQUIT (the master's fast shutdown, or an operator's) ends a worker at once: its
    lanes are let go without waiting for a tus body that trickles on until gunicorn's
    timeout, as gunicorn's own pool is, so the worker logs its exit and runs gunicorn's
    ``worker_exit`` hook now, not when the upload ends."""
    token = make_token(user)
    env = {**subprocess_env, "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "2"}
    server = Gunicorn(env, tmp_path / "g.log")
    stream = None
    try:
        stream = trickling_patch(server.port, token, 1024 * 1024)
        time.sleep(0.5)  # let the worker hand the PATCH to a tus-lane thread
        pid = server.proc.pid
        [worker] = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        os.kill(int(worker), signal.SIGQUIT)
        exiting = f"Worker exiting (pid: {worker})"
        deadline = time.monotonic() + 5
        while exiting not in server.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert exiting in server.output(), server.output()[-2000:]
    finally:
        if stream is not None:
            stream.close()
        server.stop()
