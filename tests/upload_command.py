"""``portal_upload`` against a scripted portal on loopback: the fake upload API and the
command run with short defaults, shared by the command's pin tests; and a live gunicorn
(``LiveServer``) for the client tests that need the real API."""

import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time

from tests.commands import run_command
from tests.conftest import PYTHON, ROOT, free_port


class FakePortal:
    """The upload API's happy path on loopback, in memory, with scripted answers first:
    ``script(method, kind, (status, json_or_bytes), ...)`` (kind: sessions, session, part,
    finalize). It records ``(method, path, body)`` of every request."""

    def __init__(self, size, chunk, *, received=(), data=None):
        import http.server
        import threading

        self.data = data
        self.size, self.chunk = size, chunk
        self.total = -(-size // chunk)
        self.parts = {}
        self.received = received
        self.requests = []
        self.answers = {}
        self.file_size = None
        self.put_delay = 0.0
        portal = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_one(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.command == "PUT" and portal.put_delay:
                    time.sleep(portal.put_delay)
                status, payload = portal.answer(self.command, self.path, body)
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PUT = handle_one

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                """A client that hung up first (a timeout under test) is no server error."""
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self):
        self._thread.start()
        for number in self.received:
            self.parts[number] = self.slice(number)
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self):
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def slice(self, number):
        return self.data[(number - 1) * self.chunk : number * self.chunk]

    def script(self, method, kind, *answers):
        self.answers.setdefault((method, kind), []).extend(answers)

    def script_assembly(self, *progress, failure=None):
        """Finalize answers 202; the status polls then answer: the parts (all received),
        each session of ``progress``, then ``failed`` with ``failure`` when given."""
        self.script("POST", "finalize", (202, {"status": "finalizing"}))
        polls = [{"status": "in_progress", "received_parts": ""}, *progress]
        if failure is not None:
            polls.append({"status": "failed", "failure_reason": failure})
        self.script("GET", "session", *[(200, session) for session in polls])

    def file(self):
        assembled = b"".join(self.parts[n] for n in sorted(self.parts))
        size = len(assembled) if self.file_size is None else self.file_size
        return {"id": "f1", "size_bytes": size, "sha256": hashlib.sha256(assembled).hexdigest()}

    def answer(self, method, path, body):
        self.requests.append((method, path, body))
        rest = path.split("/api/v1/uploads/", 1)[1].split("/")
        kind = {1: "sessions", 2: "session", 3: "finalize", 4: "part"}[len(rest)]
        if self.answers.get((method, kind)):
            return self.answers[(method, kind)].pop(0)
        if kind == "sessions":
            return 201, {
                "id": "s1",
                "status": "in_progress",
                "total_parts": self.total,
                "chunk_size_bytes": self.chunk,
            }
        if kind == "session":
            received = ",".join(str(n) for n in sorted(self.parts))
            return 200, {"status": "in_progress", "received_parts": received, "file": self.file()}
        if kind == "part":
            self.parts[int(rest[3])] = body
            return 201, {}
        return 200, {"file": self.file()}

    def puts(self):
        return [
            (path.rsplit("/", 1)[1], body)
            for method, path, body in self.requests
            if method == "PUT"
        ]


def upload(path, url, *args):
    """``portal_upload`` with short defaults, so that a client that waits for a body it never
    sends fails in seconds (later ``args`` override them)."""
    short = ("--timeout", "3", "--retries", "1", "--finalize-wait", "5")
    return run_command("portal_upload", str(path), "--url", url, *short, *args)


class LiveServer:
    """gunicorn serving the test database and storage; its output goes to a file."""

    def __init__(self, env, log_path):
        self.port = free_port()
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}", "--workers", "2"],
            cwd=ROOT,
            env={**env, "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "2"},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def _wait(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log()
            try:
                if self.request("GET", "/api/v1/uploads/sessions")[0] == 401:
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("gunicorn did not start:\n" + self.log())

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
        finally:
            conn.close()

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def run_upload(path, url, token, *args):
    return run_command("portal_upload", str(path), "--url", url, "--token", token, *args)


def write_file(tmp_path, size, name="data.bin"):
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    return path
