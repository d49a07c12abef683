"""The API through a live gunicorn, driven by the ``portal_upload`` client command: in this
process, but for one run killed and resumed through real processes."""

import json
import signal
import socket
import subprocess
import time

import pytest

from portal import storage
from portal.models import IngestFile, UploadPart, UploadSession
from tests import objects
from tests.api_helpers import make_token, sha256
from tests.commands import run_command, usage_error
from tests.conftest import PYTHON, ROOT, free_port
from tests.peers import BadRequestServer
from tests.runner import RunnerServer
from tests.upload_command import LiveServer, run_upload, write_file

pytestmark = pytest.mark.slow


@pytest.fixture
def server(subprocess_env, tmp_path):
    live = LiveServer(subprocess_env, tmp_path / "server.log")
    yield live
    live.stop()


@pytest.fixture
def token(user):
    return make_token(user)


def upload_command(env, path, url, token, *args):
    return [PYTHON, "manage.py", "portal_upload", str(path), "--url", url, "--token", token, *args]


def test_client_uploads_finalizes_and_compares_sha256(server, token, tmp_path):
    path = write_file(tmp_path, 300_001)
    result = run_upload(path, server.url, token, "--chunk-size", "65536")
    assert result.code == 0, result.out + result.err
    digest = sha256(path.read_bytes())
    assert f"server sha256: {digest}" in result.out
    assert f"local  sha256: {digest}" in result.out
    assert result.out.strip().endswith("OK")
    session = UploadSession.objects.get()
    assert (session.status, session.total_parts) == ("complete", 5)
    file = IngestFile.objects.get()
    assert (file.status, file.sha256, file.original_filename) == ("stored", digest, "data.bin")
    assert b"".join(objects.iter_final(file.storage_key)) == path.read_bytes()

    again = run_upload(path, server.url, token, "--chunk-size", "65536")
    assert again.code == 0, again.err
    assert "already complete" in again.out
    assert UploadSession.objects.count() == 1


def test_killed_client_resumes_and_finishes(server, subprocess_env, token, tmp_path):
    """The process boundary: a client killed mid-upload, then a run that exits 0."""
    path = write_file(tmp_path, 8 * 1024 * 1024)
    command = upload_command(
        subprocess_env, path, server.url, token, "--chunk-size", "32768", "--parallel", "1"
    )
    proc = subprocess.Popen(
        command, cwd=ROOT, env=subprocess_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while UploadPart.objects.count() < 10:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    received = UploadPart.objects.count()
    assert 10 <= received < 256, "the client was not killed mid-upload"

    result = subprocess.run(
        upload_command(subprocess_env, path, server.url, token, "--chunk-size", "32768"),
        cwd=ROOT,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resuming:" in result.stdout
    assert result.stdout.strip().endswith("OK")
    assert UploadSession.objects.count() == 1
    session = UploadSession.objects.get()
    assert (session.status, session.completed_parts) == ("complete", 256)
    assert IngestFile.objects.get().sha256 == sha256(path.read_bytes())


def test_client_failures_exit_non_zero_with_a_clear_message(server, token, tmp_path):
    path = write_file(tmp_path, 1000)
    bad = run_upload(path, server.url, "pt_wrong", "--retries", "0")
    assert bad.code == 1
    assert "401" in bad.err and "invalid_token" in bad.err

    down = run_upload(path, f"http://127.0.0.1:{free_port()}", token, "--retries", "1")
    assert down.code == 1
    assert "connection failed" in down.err and "gave up after 2 tries" in down.err

    first = run_upload(path, server.url, token, "--idempotency-key", "k")
    assert first.code == 0
    UploadSession.objects.update(status="aborted")
    aborted = run_upload(path, server.url, token, "--idempotency-key", "k")
    assert aborted.code == 1
    assert "is aborted" in aborted.err


def test_status_codes_through_the_live_server(server, token):
    auth = {"Authorization": f"Bearer {token}"}
    base = "/api/v1/uploads/sessions"
    assert server.request("POST", base, b"{}")[0] == 401
    assert server.request("GET", base, headers=auth)[0] == 405
    create = json.dumps({"filename": "x", "size_bytes": 20, "chunk_size_bytes": 10})
    status, session = server.request("POST", base, create, auth)
    assert status == 201
    part = f"{base}/{session['id']}/parts"
    assert server.request("GET", f"{base}/{'0' * 32}", headers=auth)[0] == 404
    chunked = server.request("PUT", f"{part}/1", iter([b"x" * 10]), auth)
    assert chunked[0] == 411
    assert server.request("PUT", f"{part}/1", b"x" * 11, auth)[0] == 413
    assert server.request("PUT", f"{part}/1", b"x" * 10, auth)[0] == 201
    assert server.request("PUT", f"{part}/1", b"x" * 10, auth)[0] == 200
    assert server.request("PUT", f"{part}/1", b"y" * 10, auth)[0] == 409
    status, body = server.request("POST", f"{base}/{session['id']}/finalize", b"", auth)
    assert (status, body["error"]["missing_parts"]) == (409, "2")
    assert server.request("DELETE", f"{base}/{session['id']}", headers=auth)[0] == 204
    assert server.request("PUT", f"{part}/2", b"x" * 10, auth)[0] == 410
    assert storage.list_temp() and len(list(storage.list_temp())) == 1


def test_a_body_shorter_than_its_content_length_is_400_and_not_kept(server, token):
    auth = {"Authorization": f"Bearer {token}"}
    create = json.dumps({"filename": "x", "size_bytes": 1000, "chunk_size_bytes": 1000})
    _, session = server.request("POST", "/api/v1/uploads/sessions", create, auth)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            f"PUT /api/v1/uploads/sessions/{session['id']}/parts/1 HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            "Content-Length: 1000\r\nConnection: close\r\n\r\n".encode()
            + b"z" * 500
        )
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"incomplete_part" in answer
    assert objects.own_temp_keys() == []
    assert not UploadPart.objects.exists()


def test_the_token_never_reaches_the_logs(server, token, tmp_path):
    path = write_file(tmp_path, 50_000)
    result = run_upload(path, server.url, token, "--chunk-size", "20000")
    assert result.code == 0, result.err
    server.request("GET", "/api/v1/uploads/sessions", headers={"Authorization": "Bearer pt_nope"})
    auth = {"Authorization": f"Bearer {token}"}
    create = json.dumps({"filename": "y", "size_bytes": 5})
    _, session = server.request("POST", "/api/v1/uploads/sessions", create, auth)
    server.request("DELETE", f"/api/v1/uploads/sessions/{session['id']}", headers=auth)
    server.stop()
    log = server.log()
    assert token not in log and token[3:15] not in log
    assert "pt_nope" not in log and "Bearer" not in log
    assert token not in result.out + result.err
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    events = {}
    for record in records:
        events.setdefault(record.get("event"), []).append(record)
    assert len(events["part.received"]) == 3
    assert {r["part_number"] for r in events["part.received"]} == {1, 2, 3}
    stored = events["file.stored"][0]
    assert stored["file_id"] == str(IngestFile.objects.get(original_filename="data.bin").id)
    assert events["session.aborted"][0]["session_id"] == session["id"]
    assert len(events["session.created"]) == 2


def test_the_token_comes_from_the_environment_or_a_file_and_on_the_command_line_warns(
    server, token, tmp_path, capsys, monkeypatch
):
    path = write_file(tmp_path, 1000)

    def run(*args, env_token=None):
        monkeypatch.setenv("PORTAL_TOKEN", env_token or "")
        result = run_command("portal_upload", str(path), "--url", server.url, *args)
        result.err += capsys.readouterr().err  # the warnings go to the process's stderr
        return result

    from_env = run(env_token=token)
    assert from_env.code == 0 and "warning" not in from_env.err, from_env.err

    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    from_file = run("--token-file", str(token_file))
    assert from_file.code == 0 and "warning" not in from_file.err, from_file.err

    on_the_line = run("--token", token)
    assert on_the_line.code == 0
    assert "warning: --token puts the token on the command line" in on_the_line.err
    assert token not in on_the_line.err + on_the_line.out

    token_file.chmod(0o644)
    shared = run("--token-file", str(token_file))
    assert shared.code == 0 and "can be read by other users" in shared.err

    for args, says in [
        ((), "no API token: set PORTAL_TOKEN or pass --token-file"),
        (("--token-file", str(tmp_path / "missing")), "missing: cannot read it"),
        (("--token-file", str(write_file(tmp_path, 0, "empty"))), "is empty"),
    ]:
        refused = run(*args)
        assert refused.code == 2 and says in refused.err, (args, refused.err)
    both = ("--token-file", str(token_file), "--token", token)
    code, err = usage_error("portal_upload", str(path), "--url", server.url, *both)
    assert code == 2 and "not allowed with" in err


def test_an_https_url_at_a_plain_http_server_names_the_protocol(tmp_path):
    path = write_file(tmp_path, 1000)
    with BadRequestServer() as plain:
        result = run_upload(path, f"https://127.0.0.1:{plain.port}", "pt_x")

    assert result.code == 1
    assert f"TLS handshake with 127.0.0.1:{plain.port} failed" in result.err
    assert "does the server speak https on that port?" in result.err
    assert "Bad file descriptor" not in result.err
    assert plain.connections == 1  # a protocol mismatch is not retried


def test_a_trickling_server_is_cut_at_the_request_deadline(tmp_path):
    path = write_file(tmp_path, 1000)
    with RunnerServer("trickle", trickle_interval=0.5) as trickling:
        started = time.monotonic()
        result = run_upload(
            path,
            f"http://127.0.0.1:{trickling.port}",
            "pt_x",
            "--timeout",
            "1",
            "--retries",
            "0",
        )
        elapsed = time.monotonic() - started

    assert result.code == 1
    assert f"127.0.0.1:{trickling.port} did not answer within 1 s" in result.err
    assert elapsed < 20, f"the client took {elapsed:.1f} s"


def test_a_url_that_is_not_the_portal_stops_with_a_clear_message(tmp_path):
    """A web server that answers 200 with HTML (a wrong --url): exit 1 naming it, no
    traceback (it was a KeyError)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Html(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b"<html><body>Welcome to nginx!</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Html)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = run_upload(write_file(tmp_path, 1000), url, "pt_x")
    finally:
        server.shutdown()
        server.server_close()
    assert result.code == 1, result.err
    assert "HTTP 200 but the answer is not the portal's JSON" in result.err
    assert "Welcome to nginx!" in result.err
