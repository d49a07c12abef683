"""Probes against a real gunicorn server while its database fails for real.

A disposable PostgreSQL server that the test stops and starts (``tests/pgserver.py``),
and a black hole: a local listener that accepts connections and never answers, like a
database host whose process hangs. Each server runs one gthread worker with 8 threads.
"""

import http.client
import json
import os
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests import pgserver
from tests.conftest import PYTHON, ROOT, free_port
from tests.processes import stop_process

pytestmark = pytest.mark.slow

GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
SERVER_THREADS = 8


class Server:
    """gunicorn with the project's ``gunicorn.conf.py``, one worker, on a free port."""

    def __init__(self, env, log_path):
        self.port = free_port()
        self.env = {**env, "HOST": "127.0.0.1", "PORT": str(self.port)}
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115  (closed in stop())
        self.proc = subprocess.Popen(
            [GUNICORN, "-c", str(ROOT / "gunicorn.conf.py")],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_serving()

    def _wait_until_serving(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gunicorn exited: {self.output()}")
            try:
                if self.get("/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"gunicorn did not serve: {self.output()}")

    def get(self, path, host=None, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Host": host or f"127.0.0.1:{self.port}"})
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()

    def worker_pid(self):
        pid = self.proc.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        assert len(children) == 1
        return int(children[0])

    def output(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        stop_process(self.proc, timeout=15)
        self.log.close()


def base_env(storage_env, **extra):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTAL_", "AWS_", "DATABASE_", "DJANGO_", "GUNICORN_"))
    }
    env.update(storage_env)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "boot.settings",
            "DJANGO_CONFIGURATION": "Test",
            "PYTHONPATH": str(ROOT),
            "WEB_CONCURRENCY": "1",
            "GUNICORN_THREADS": str(SERVER_THREADS),
            "PORTAL_LOG_FORMAT": "json",
            "PORTAL_LOG_LEVEL": "info",
            "PORTAL_READY_CACHE_SECONDS": "0",
            "PORTAL_HEALTH_CHECK_TIMEOUT_SECONDS": "1",
            "AWS_S3_CONNECT_TIMEOUT_SECONDS": "1",
            "AWS_S3_MAX_ATTEMPTS": "1",
        }
    )
    env.update(extra)
    return env


class BlackHole:
    """Accepts TCP connections and never sends a byte; counts what it accepted."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def threads_of(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def health_check_command(server, env):
    """django-health-check's command, as a container HEALTHCHECK would run it."""
    return subprocess.run(
        [PYTHON, "manage.py", "health_check", "ready", f"127.0.0.1:{server.port}"],
        cwd=ROOT,
        env={**env, "SECURE_SSL_REDIRECT": "false"},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def pg():
    if not pgserver.available():
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl)")
    server = pgserver.PgServer(free_port())
    server.start()
    yield server
    server.destroy()


def test_ready_follows_a_database_that_stops_and_starts(pg, portal_storage, tmp_path):
    # Prod settings: ALLOWED_HOSTS does not list the address the probe uses, and HTTPS
    # is enforced; probes come over plain HTTP with the instance's IP as Host.
    env = base_env(
        portal_storage,
        DJANGO_CONFIGURATION="Prod",
        DATABASE_URL=pg.url,
        SECRET_KEY="server-test-secret-key",
        ALLOWED_HOSTS="portal.example.com",
        PORTAL_DRAIN_SECONDS="0",  # no balancer to leave: stop at once
    )
    server = Server(env, tmp_path / "gunicorn.log")
    try:
        status, body = server.get("/ready")
        assert status == 200, body
        assert json.loads(body)["checks"]["database"] == "ok"
        assert server.get("/status")[0] == 400  # other paths keep ALLOWED_HOSTS
        command = health_check_command(server, env)
        assert command.returncode == 0, command.stderr

        pg.stop()
        status, body = server.get("/ready")
        assert status == 503
        assert json.loads(body) == {
            "status": "unavailable",
            "checks": {
                "database": "unavailable",
                "storage:portal_temp": "ok",
                "storage:portal_final": "ok",
            },
        }
        assert str(pg.port) not in body and "refused" not in body
        assert server.get("/health") == (200, '{"status": "ok"}')
        assert health_check_command(server, env).returncode != 0

        pg.start()
        assert server.get("/ready")[0] == 200
    finally:
        server.stop()
    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    failures = [line for line in lines if line.get("event") == "ready.check_failed"]
    assert failures and all(line["level"] == "WARNING" for line in failures)
    assert {line["check"] for line in failures} == {"database"}
    # No 500 page, no "unexpected exception during health check" (access lines and the
    # deliberate DisallowedHost above belong to gunicorn's and Django's own loggers).
    errors = [line for line in lines if line["level"] in ("ERROR", "CRITICAL")]
    assert not [e for e in errors if e["logger"].startswith(("django.request", "health_check"))]


def test_hung_database_answers_in_budget_and_bounds_threads(portal_storage, tmp_path):
    hole = BlackHole()
    env = base_env(
        portal_storage,
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{hole.port}/portal",
        DATABASE_CONNECT_TIMEOUT_SECONDS="30",  # the driver alone would wait this long
        PORTAL_HEALTH_CHECK_TIMEOUT_SECONDS="1",
    )
    server = Server(env, tmp_path / "gunicorn.log")
    try:
        started = time.monotonic()
        status, body = server.get("/ready")
        elapsed = time.monotonic() - started
        assert status == 503
        assert elapsed < 1 + 1, elapsed
        assert json.loads(body)["checks"]["database"] == "unavailable"

        worker = server.worker_pid()
        idle_threads = threads_of(worker)
        peak = [idle_threads]
        storming = threading.Event()

        def sample():
            while not storming.is_set():
                peak.append(threads_of(worker))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        with ThreadPoolExecutor(max_workers=32) as clients:
            storm = list(clients.map(lambda _: server.get("/ready")[0], range(200)))
        storming.set()
        sampler.join()

        assert storm == [503] * 200
        # One hung connection per check, not one per probe; threads bounded by gunicorn's
        # own pool plus the probe pool, whatever the number of probes.
        assert len(hole.accepted) == 1
        assert max(peak) <= idle_threads + SERVER_THREADS + 4, (idle_threads, max(peak))
        assert server.get("/health")[0] == 200
    finally:
        server.stop()
        hole.close()
