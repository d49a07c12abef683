"""Probes against a real gunicorn server while its database fails for real.

A disposable PostgreSQL server that the test stops and starts (``tests/pgserver.py``),
and a black hole: a local listener that accepts connections and never answers, like a
database host whose process hangs. Each server runs one gthread worker with 8 threads.
"""

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests import pgserver
from tests.conftest import free_port
from tests.health_helpers import (
    SERVER_THREADS,
    BlackHole,
    Server,
    base_env,
    health_check_command,
)

pytestmark = pytest.mark.slow


def threads_of(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


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
