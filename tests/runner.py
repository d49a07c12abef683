"""A real runner for tests and benchmarks: a threaded HTTP/1.1 server on loopback.

It answers every POST according to its mode and records what it received, checking each
signature against the shared secret::

    with RunnerServer(mode="ok", secret="s3cret") as runner:
        ...  # point PORTAL_RUNNER_ENDPOINT at runner.url
        assert runner.counts() == {event_id: 1}
        assert all(r.signature_ok for r in runner.requests)

Modes: ``ok`` (200), ``error`` (``status``, 500 by default), ``hang`` (no answer until the
server stops or ``release()``), ``drop`` (close the connection without an answer),
``trickle`` (a 200's headers, then one body byte every ``trickle_interval`` seconds),
``huge`` (200 with a body of ``HUGE_BODY_BYTES``, more than a client reads of an answer).
``delay`` seconds pass before each answer (a slow runner). ``tls=(certfile, keyfile)``
serves https.
``script(*modes)`` answers the next requests with those modes, then the standing mode.

Run it as a process too (benchmarks, so the runner does not share the client's GIL)::

    python tests/runner.py --secret s3cret [--mode ok] [--no-record]

prints its URL on the first line and serves until stdin closes; ``GET /_stats`` returns
``{"requests", "distinct", "bad_signatures"}``.
"""

import argparse
import collections
import hashlib
import hmac
import http.server
import json
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass

MODES = ("ok", "error", "hang", "drop", "trickle", "huge")
HUGE_BODY_BYTES = 1024 * 1024
HANG_LIMIT_SECONDS = 60
TRICKLE_BYTES = 60


@dataclass
class ReceivedRequest:
    """One POST as the runner saw it."""

    path: str
    headers: dict
    body: bytes
    signature_ok: bool
    mode: str
    received_at: float
    client_port: int

    @property
    def event_id(self):
        return self.headers.get("x-portal-event-id")

    def json(self):
        return json.loads(self.body)


def expected_signature(body, secret):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stalls
    server_version = "TestRunner/1"

    def log_message(self, format, *args):
        """Quiet: the tests read ``requests``, not stderr."""

    def do_GET(self):
        runner = self.server.runner
        if self.path == "/_stats":
            self._reply(200, json.dumps(runner.stats()).encode())
        else:
            self._reply(404, b"")

    def do_POST(self):
        runner = self.server.runner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        mode = runner._next_mode()
        runner._record(self.path, self.headers, body, mode, self.client_address[1])
        if mode == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode == "hang":
            runner._released.wait(HANG_LIMIT_SECONDS)
            self.close_connection = True
            return
        if mode == "trickle":
            self._trickle(runner)
            return
        if runner.delay:
            time.sleep(runner.delay)
        if mode == "huge":
            self._reply(200, b" " * HUGE_BODY_BYTES)
            return
        status = 200 if mode == "ok" else runner.status
        self._reply(status, b'{"ok":true}' if status < 300 else b'{"error":"test runner"}')

    def _trickle(self, runner):
        """Headers at once, then the body a byte at a time until it is sent or released."""
        released = runner._released
        self.send_response(200)
        self.send_header("Content-Length", str(TRICKLE_BYTES))
        self.end_headers()
        self.wfile.flush()
        for _ in range(TRICKLE_BYTES):
            if released.wait(runner.trickle_interval):
                break
            self.wfile.write(b" ")
            self.wfile.flush()
        self.close_connection = True

    def _reply(self, status, payload):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def handle_error(self, request, client_address):
        """A dispatcher killed mid-request (the crash tests do it) cuts the connection;
        that is the test working, not an error worth a traceback on stderr."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class RunnerServer:
    """A runner on ``127.0.0.1`` with a free port; a context manager that stops it."""

    def __init__(
        self,
        mode="ok",
        *,
        secret="test-runner-secret",
        status=500,
        delay=0.0,
        record=True,
        trickle_interval=1.0,
        tls=None,
    ):
        self.secret = secret
        self.delay = delay
        self.trickle_interval = trickle_interval
        self.scheme = "https" if tls else "http"
        self.status = status
        self.record = record
        self.requests = []
        self._mode = self._check(mode)
        self._script = collections.deque()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._released = threading.Event()
        self._total = 0
        self._seen = set()
        self._bad_signatures = 0
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.runner = self
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self):
        host, port = self._server.server_address[:2]
        return f"{self.scheme}://{host}:{port}/hooks/portal"

    @property
    def port(self):
        return self._server.server_address[1]

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- behaviour ------------------------------------------------------------------------

    def set_mode(self, mode, *, status=None):
        """Answer every later request in ``mode`` (``status`` for ``error``)."""
        with self._lock:
            self._mode = self._check(mode)
            self._script.clear()
            if status is not None:
                self.status = status
            self._release_hanging()

    def script(self, *modes):
        """Answer the next ``len(modes)`` requests with these modes, in order."""
        with self._lock:
            self._script.extend(self._check(m) for m in modes)

    def release(self):
        """Let requests that hang now finish (their connections close unanswered)."""
        with self._lock:
            self._release_hanging()

    # -- what arrived ---------------------------------------------------------------------

    def counts(self):
        """Requests per ``X-Portal-Event-Id``."""
        with self._lock:
            return collections.Counter(r.event_id for r in self.requests)

    def stats(self):
        with self._lock:
            return {
                "requests": self._total,
                "distinct": len(self._seen),
                "bad_signatures": self._bad_signatures,
            }

    def wait_for_requests(self, n, timeout=10.0):
        """Block until at least ``n`` requests arrived; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while self._total < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"runner saw {self._total} requests, expected {n}")
                self._arrived.wait(left)

    # -- internals ------------------------------------------------------------------------

    @staticmethod
    def _check(mode):
        if mode not in MODES:
            raise ValueError(f"unknown runner mode {mode!r}; one of {', '.join(MODES)}")
        return mode

    def _release_hanging(self):
        self._released.set()
        self._released = threading.Event()

    def _next_mode(self):
        with self._lock:
            return self._script.popleft() if self._script else self._mode

    def _record(self, path, headers, body, mode, client_port):
        signature_ok = hmac.compare_digest(
            headers.get("X-Portal-Signature", ""), expected_signature(body, self.secret)
        )
        with self._arrived:
            self._total += 1
            self._seen.add(headers.get("X-Portal-Event-Id"))
            self._bad_signatures += not signature_ok
            if self.record:
                self.requests.append(
                    ReceivedRequest(
                        path=path,
                        headers={k.lower(): v for k, v in headers.items()},
                        body=body,
                        signature_ok=signature_ok,
                        mode=mode,
                        received_at=time.time(),
                        client_port=client_port,
                    )
                )
            self._arrived.notify_all()


def main(argv=None):
    parser = argparse.ArgumentParser(description="A test runner answering outbox POSTs.")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--mode", default="ok", choices=MODES)
    parser.add_argument("--no-record", action="store_true", help="count only, keep no bodies")
    args = parser.parse_args(argv)
    with RunnerServer(args.mode, secret=args.secret, record=not args.no_record) as runner:
        print(runner.url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
