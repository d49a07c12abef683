"""portal_upload against a part another request is still sending (409 part_in_progress):
the client waits and retries, as the answer says, instead of giving the upload up."""

import contextlib
import json
import select
import socket
import threading
import time

import pytest

from portal import storage
from portal.models import IngestFile
from tests.api_helpers import make_token, sha256
from tests.upload_command import LiveServer, run_upload, write_file

pytestmark = pytest.mark.slow
CHUNK = 65536


@pytest.fixture
def server(subprocess_env, tmp_path):
    live = LiveServer(subprocess_env, tmp_path / "server.log")
    yield live
    live.stop()


def test_a_part_another_request_is_sending_is_retried_until_it_ended(
    server, subprocess_env, user, tmp_path
):
    if not storage.backend().assembles_in_place:
        pytest.skip("on S3 each upload of a part is an object of its own: none is refused")
    token = make_token(user)
    path = write_file(tmp_path, 3 * CHUNK)
    data = path.read_bytes()
    auth = {"Authorization": f"Bearer {token}"}
    create = {
        "filename": "data.bin",
        "content_type": "application/octet-stream",
        "size_bytes": len(data),
        "chunk_size_bytes": CHUNK,
        "idempotency_key": "busy",
    }
    _, session = server.request("POST", "/api/v1/uploads/sessions", json.dumps(create), auth)
    part = f"/api/v1/uploads/sessions/{session['id']}/parts/2"
    second = data[CHUNK : 2 * CHUNK]
    with stalled_upload(server, part, token, second) as stalled:
        conflicts = server.log().count(f"Conflict: {part}")
        options = ("--chunk-size", str(CHUNK), "--idempotency-key", "busy", "--retries", "8")
        results = []
        client = threading.Thread(
            target=lambda: results.append(run_upload(path, server.url, token, *options))
        )
        client.start()
        wait_for(
            lambda: server.log().count(f"Conflict: {part}") > conflicts or not client.is_alive()
        )
        stalled.sendall(second[1000:])
        stalled.shutdown(socket.SHUT_WR)
        assert stalled.recv(100).startswith(b"HTTP/1.1 201")
    client.join(timeout=120)
    [result] = results
    assert result.code == 0, result.out + result.err
    file = IngestFile.objects.get()
    assert (file.status, file.sha256) == (IngestFile.Status.STORED, sha256(data))


@contextlib.contextmanager
def stalled_upload(server, part, token, body):
    """A PUT of ``part`` that sent its first 1000 bytes and holds the part's range (a
    probe is refused 409). A probe can reach the range first, and the stalled PUT is then
    the one refused: it is sent again."""
    for _ in range(10):
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as stalled:
            stalled.sendall(
                f"PUT {part} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Length: {CHUNK}\r\nConnection: close\r\n\r\n".encode()
                + body[:1000]
            )
            deadline = time.monotonic() + 30
            while not select.select([stalled], [], [], 0)[0]:  # not answered yet
                if answer_to_no_body(server, part, token).startswith(b"HTTP/1.1 409"):
                    yield stalled
                    return
                assert time.monotonic() < deadline, "timed out"
                time.sleep(0.05)
    raise AssertionError("the stalled PUT never held its range")


def wait_for(condition, seconds=30):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def answer_to_no_body(server, part, token):
    """The answer to a PUT of ``part`` whose body never comes: 409 while another request
    holds its range, else 400 ``incomplete_part`` (nothing kept)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            f"PUT {part} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Length: {CHUNK}\r\nConnection: close\r\n\r\n".encode()
        )
        sock.shutdown(socket.SHUT_WR)
        return sock.recv(100)
