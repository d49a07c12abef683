"""Set-ups the health tests share: storage that refuses every write, and a real gunicorn
(the project's ``gunicorn.conf.py``, one worker) with the environment it is started in, and
stand-in readiness checks for the probe pool (``Hangs``, ``Quick``)."""

import http.client
import os
import shutil
import socket
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path

from tests.conftest import PYTHON, ROOT, free_port
from tests.processes import stop_process

GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
SERVER_THREADS = 8


def break_local_storage(data_dir, prefix="temp"):
    """Replace the storage directory by a file: every write under it fails."""
    target = data_dir / prefix
    shutil.rmtree(target, ignore_errors=True)
    target.write_text("not a directory")


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


class Hangs:
    """A check that blocks until released (or 10 s at most)."""

    timeout = timedelta(seconds=60)

    def __init__(self, name, release):
        self.name = name
        self.release = release
        self.started = threading.Event()

    def __repr__(self):
        return f"Hangs({self.name!r})"

    def run(self):
        self.started.set()
        self.release.wait(10)
        return self.name


class Quick:
    timeout = timedelta(seconds=60)

    def __repr__(self):
        return "Quick()"

    def run(self):
        return "quick"


def database_down(monkeypatch):
    """Every connect of ``portal.dbgate`` fails as a dead server's would until the test sets
    the returned flag's ``[0]`` to False; then connects go through again."""
    from django.db import OperationalError

    from portal import dbgate

    real_connect, down = dbgate.connect, [True]

    def connect(alias="default"):
        if down[0]:
            raise OperationalError("connection timeout expired")
        real_connect(alias)

    monkeypatch.setattr(dbgate, "connect", connect)
    return down
