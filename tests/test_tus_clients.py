"""tus through a live gunicorn (gunicorn.conf.py): raw sockets where a connection breaks or
two PATCHes meet, then real clients (tuspy; tus-js-client under Node; Uppy in headless Chromium,
from a page on another origin), each interrupted and resumed, the stored file's
sha256 compared.

A client that is not installed skips the test locally and fails it under ``CI=true``
(``.ci/run`` installs them; tests/tus_clients/package.json pins the npm ones).
"""

import hashlib
import http.client
import json
import os
import select
import shutil
import socket
import subprocess
import time

import pytest

from portal.models import IngestFile, TusUpload, UploadPart
from tests import fixtures
from tests.api_helpers import make_token
from tests.conftest import free_port
from tests.node_clients import missing
from tests.tus_helpers import TUS, metadata, stored_sha256
from tests.upload_command import LiveServer

node_modules = fixtures.node_modules  # a fixture of every module; named here for older imports

pytestmark = pytest.mark.slow

CHUNK = 64 * 1024


@pytest.fixture
def server(subprocess_env, tmp_path):
    live = LiveServer({**subprocess_env, "PORTAL_CHUNK_SIZE": str(CHUNK)}, tmp_path / "server.log")
    yield live
    live.stop()


@pytest.fixture
def token(user):
    return make_token(user)


def tus_request(server, method, path, token, body=b"", **headers):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0", **headers}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response
    finally:
        conn.close()


def create(server, token, length, **headers):
    response = tus_request(server, "POST", TUS, token, **{"Upload-Length": str(length), **headers})
    assert response.status == 201, response.status
    return response.getheader("Location").removeprefix(server.url)


def settled_offset(server, path, token, deadline_seconds=30):
    """HEAD's offset once no PATCH holds the upload (an empty PATCH at it lands)."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        offset = int(tus_request(server, "HEAD", path, token).getheader("Upload-Offset"))
        probe = tus_request(
            server,
            "PATCH",
            path,
            token,
            **{"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
        )
        if probe.status == 204:
            return offset
        time.sleep(0.1)
    raise AssertionError("the upload stayed locked")


def offset_after_break(server, path, token, deadline_seconds=10):
    """``settled_offset`` of an upload whose PATCH broke off after sending bytes: first wait
    for the server to have taken some (the broken PATCH may still be waiting for a thread
    when the empty PATCH of ``settled_offset`` lands)."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if int(tus_request(server, "HEAD", path, token).getheader("Upload-Offset")):
            break
        time.sleep(0.05)
    return settled_offset(server, path, token)


def open_patch(server, path, token, offset, length):
    """A PATCH whose headers and no body are sent: the caller sends (some of) the body."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(
        (
            f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Tus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\nContent-Length: {length}\r\n"
            "Content-Type: application/offset+octet-stream\r\n\r\n"
        ).encode()
    )
    return sock


def test_a_patch_whose_connection_breaks_keeps_what_arrived(server, token):
    data = os.urandom(5 * CHUNK + 123)
    path = create(server, token, len(data))
    sent = 2 * CHUNK + 5000
    sock = open_patch(server, path, token, 0, len(data))
    sock.sendall(data[:sent])
    sock.close()

    offset = offset_after_break(server, path, token)
    assert offset == sent  # two whole parts and a tail of 5,000 bytes
    assert UploadPart.objects.count() == 2
    assert TusUpload.objects.get().tail_bytes == 5000
    response = tus_request(
        server,
        "PATCH",
        path,
        token,
        body=data[offset:],
        **{"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
    )
    assert response.status == 204
    assert stored_sha256() == hashlib.sha256(data).hexdigest()


def test_a_patch_without_content_length_is_empty_and_a_chunked_one_is_411(server, token):
    """HTTP/1.1: a request with neither ``Content-Length`` nor ``Transfer-Encoding`` has no
    body (RFC 9112 6.3): 204 at the same offset. A chunked body is refused (411)."""
    path = create(server, token, 5)
    head = (
        f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
        "Content-Type: application/offset+octet-stream\r\nConnection: close\r\n"
    )
    chunked = "Transfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n0\r\n\r\n"
    for rest, status in (("\r\n", b"204"), (chunked, b"411")):
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(f"{head}{rest}".encode())
            reply = b"".join(iter(lambda sock=sock: sock.recv(65536), b""))
        assert reply.startswith(b"HTTP/1.1 " + status), reply[:300]
        assert int(tus_request(server, "HEAD", path, token).getheader("Upload-Offset")) == 0


def test_a_second_patch_while_one_streams_is_423(server, token):
    data = os.urandom(3 * CHUNK)
    path = create(server, token, len(data))
    for _attempt in range(20):  # a probe may hold the upload as the streaming PATCH arrives
        sock, status = streaming_and_probed(server, path, token, len(data), data[:1000])
        if status == 423:
            break
        sock.close()
    assert status == 423, server.log()[-3000:]
    sock.sendall(data[1000:])
    reply = sock.recv(4096)
    sock.close()
    assert reply.startswith(b"HTTP/1.1 204"), reply[:200]
    assert stored_sha256() == hashlib.sha256(data).hexdigest()


def streaming_and_probed(server, path, token, length, first_bytes, seconds=10):
    """A PATCH that sent ``first_bytes`` and waits, and what empty PATCHes beside it got:
    423 once it holds the upload, None if it was answered first (a probe held the upload
    when it arrived)."""
    sock = open_patch(server, path, token, 0, length)
    sock.sendall(first_bytes)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if select.select([sock], [], [], 0.05)[0]:
            return sock, None
        status = tus_request(
            server,
            "PATCH",
            path,
            token,
            **{"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        ).status
        assert status in (204, 423), status
        if status == 423:
            return sock, status
    return sock, None


def test_tuspy_uploads_is_interrupted_resumes_with_checksums(server, token, tmp_path):
    try:
        from tusclient.client import TusClient
    except ImportError:
        missing("tuspy is not installed: make .venv/.installed-dev")
    data = os.urandom(5 * CHUNK + 999)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    client = TusClient(server.url + TUS, headers={"Authorization": f"Bearer {token}"})
    first = client.uploader(
        str(path),
        chunk_size=50_000,  # PATCHes that end inside parts
        metadata={"filename": "data.bin", "sha256": digest},
        upload_checksum=True,  # sha1 of every PATCH
    )
    first.upload(stop_at=2 * CHUNK + 777)
    url = first.url
    assert settled_offset(server, url.removeprefix(server.url), token) == 2 * CHUNK + 777

    resumed = client.uploader(str(path), url=url, chunk_size=50_000, upload_checksum=True)
    assert resumed.offset == 2 * CHUNK + 777
    resumed.upload()
    assert stored_sha256() == digest
    assert IngestFile.objects.get().original_filename == "data.bin"


def test_tus_js_client_is_aborted_mid_patch_and_resumes(server, token, tmp_path, node_modules):
    size = 24 * 1024 * 1024 + 17
    data = os.urandom(size)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()

    def run(*args):
        return subprocess.run(
            ["node", "tus_js_upload.mjs", server.url + TUS, token, str(path), digest, *args],
            cwd=node_modules,
            capture_output=True,
            text=True,
            timeout=120,
        )

    first = run("4194304")  # one PATCH for the whole file (the default), aborted after 4 MiB
    assert first.returncode == 0, first.stderr
    url = first.stdout.strip().splitlines()[-1].split()[-1]
    offset = offset_after_break(server, url.removeprefix(server.url), token)
    assert 0 < offset < size, offset
    assert UploadPart.objects.exists()

    second = run("0", url)
    assert second.returncode == 0, second.stderr
    assert f"resumed at {offset}" in second.stdout
    assert stored_sha256() == digest
    version = (node_modules / "node_modules/tus-js-client/package.json").read_text()
    assert '"version": "4.3.1"' in version


def test_sha256_metadata_reaches_the_clients_as_460(server, token):
    data = b"q" * (CHUNK + 10)
    path = create(
        server,
        token,
        len(data),
        **{"Upload-Metadata": metadata(sha256=hashlib.sha256(b"").hexdigest())},
    )
    response = tus_request(
        server,
        "PATCH",
        path,
        token,
        body=data,
        **{"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )
    assert response.status == 460
    assert settled_offset(server, path, token) == CHUNK  # the first part is kept, not the last
    assert not IngestFile.objects.filter(status="stored").exists()


def chromium():
    for name in ("chromium-headless-shell", "chromium"):
        path = shutil.which(name)
        if path:
            return path
    return missing("Chromium is needed for the Uppy test: apt-get install chromium-headless-shell")


def test_uppy_in_chromium_from_another_origin_is_paused_and_resumes(
    subprocess_env, token, tmp_path, node_modules
):
    browser = chromium()
    page_port = free_port()
    env = {
        **subprocess_env,
        "PORTAL_CHUNK_SIZE": str(CHUNK),
        "PORTAL_CORS_ALLOWED_ORIGINS": f"http://127.0.0.1:{page_port}",
    }
    live = LiveServer(env, tmp_path / "server.log")
    try:
        size = 6 * 1024 * 1024 + 5
        pause_at, patch_size = 2 * 1024 * 1024, 1024 * 1024 + 3
        args = [browser, page_port, live.url + TUS, token, size, pause_at, patch_size]
        result = subprocess.run(
            ["node", "uppy_run.mjs", *map(str, args)],
            cwd=node_modules,
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        live.stop()
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["ok"], outcome
    assert outcome["events"][0].startswith("paused at") and outcome["events"][1] == "resumed"
    expected = hashlib.sha256(bytes((i * 31) % 251 for i in range(size))).hexdigest()
    assert stored_sha256() == expected
    assert IngestFile.objects.get().original_filename == "uppy.bin"
