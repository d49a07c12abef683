"""tus through deploy/nginx/portal.conf: tus-js-client sends a 1 GiB file in one PATCH (its
default ``chunkSize``) over HTTPS to nginx, which streams it to gunicorn (Prod) instead of
spooling it to disk first; the stored file has the client's sha256.

The per-address limit of the tus location is checked here too: an address streaming 8
bodies gets 429 for a 9th, another address does not.
"""

import hashlib
import os
import socket
import subprocess
import time

import pytest

from portal.models import IngestFile
from tests.topology.clients import Client
from tests.topology.programs import SERVER_NAME, Gunicorn, Nginx
from tests.tus_helpers import stored_sha256

pytestmark = [pytest.mark.topology, pytest.mark.slow]

MIB = 1024 * 1024
GIB = 1024 * MIB
TUS = "/api/v1/tus/"
TUS_STREAMS_PER_ADDRESS = 8  # limit_conn portal_tus of the tus location


@pytest.fixture
def front(prod, tls_cert, tmp_path):
    server = Gunicorn(prod, tmp_path / "gunicorn.log")
    try:
        nginx = Nginx(tmp_path / "nginx", upstream_port=server.port, cert=tls_cert)
        try:
            yield server, nginx
        finally:
            nginx.stop()
    finally:
        server.stop()


def write_file(path, size):
    """``size`` bytes, each MiB different (a part stored out of order changes the hash);
    their sha256."""
    block, digest = bytearray(os.urandom(MIB)), hashlib.sha256()
    with open(path, "wb") as out:
        for index in range(size // MIB):
            block[:8] = index.to_bytes(8, "big")
            out.write(block)
            digest.update(block)
    return digest.hexdigest()


def test_tus_js_client_sends_1_gib_in_one_patch(front, tls_cert, api_token, tmp_path, node_modules):
    _, nginx = front
    path = tmp_path / "big.bin"
    digest = write_file(path, GIB)
    endpoint = f"https://{SERVER_NAME}{TUS}"
    args = [endpoint, api_token, path, digest, nginx.https_port, tls_cert.cert]
    started = time.monotonic()
    result = subprocess.run(
        ["node", "tus_js_nginx.mjs", *map(str, args)],
        cwd=node_modules,
        capture_output=True,
        text=True,
        timeout=330,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:] + nginx.output()[-2000:]
    path.unlink()
    assert stored_sha256() == digest
    assert IngestFile.objects.get().size_bytes == GIB

    patches = [a for a in nginx.access_records() if a["method"] == "PATCH"]
    assert [(a["status"], a["request_length"] > GIB) for a in patches] == [(204, True)]
    # Streamed, never spooled: nginx logs a warning for each body it buffers to a file.
    errors = (nginx.dir / "portal.error.log").read_text()
    assert "buffered to a temporary file" not in errors
    print(
        f"\n[topology] tus-js-client, 1 GiB in one PATCH through nginx (TLS): "
        f"{elapsed:.1f} s ({GIB / MIB / elapsed:.0f} MiB/s), node says "
        f"{result.stdout.split()[-1]} s"
    )


def https(nginx, tls_cert, source, token):
    return Client(nginx.https_port, context=tls_cert.client_context(), source=source, token=token)


def open_tus_patch(nginx, tls_cert, token, source):
    """A new tus upload whose PATCH sent its head and one byte, then waits."""
    client = https(nginx, tls_cert, source, token)
    status, headers, _ = client.request(
        "POST", TUS, headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(MIB)}
    )
    client.close()
    assert status == 201, status
    upload = headers["location"].removeprefix(f"https://{SERVER_NAME}")
    raw = socket.create_connection(("127.0.0.1", nginx.https_port), 5, (source, 0))
    sock = tls_cert.client_context().wrap_socket(raw, server_hostname=SERVER_NAME)
    sock.sendall(
        f"PATCH {upload} HTTP/1.1\r\nHost: {SERVER_NAME}\r\nAuthorization: Bearer {token}\r\n"
        f"Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Length: {MIB}\r\n"
        "Content-Type: application/offset+octet-stream\r\n\r\n\0".encode()
    )
    return sock


def test_one_address_streams_at_most_8_tus_bodies(front, tls_cert, api_token):
    _, nginx = front
    streams = [
        open_tus_patch(nginx, tls_cert, api_token, "127.0.6.1")
        for _ in range(TUS_STREAMS_PER_ADDRESS)
    ]
    try:
        time.sleep(0.5)  # let nginx account for all 8
        nobody = f"{TUS}00000000-0000-0000-0000-000000000000"
        probe = {
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        }
        for source, wanted in (("127.0.6.1", 429), ("127.0.6.2", 404)):
            client = https(nginx, tls_cert, source, api_token)
            assert client.request("PATCH", nobody, b"x", probe)[0] == wanted, source
    finally:
        for sock in streams:
            sock.close()
