"""Pins for the ops area (issue #31, second round): gunicorn's shutdown drain after a restart
that reuses the master's pid (``portal.health.drain``), and the shared probe pool with a
real hung check (``portal.health.executor``)."""

import contextlib
import os
import socket
import tempfile
import threading
import time

import pytest
from django.test import Client

from boot.settings import Base
from portal.health import drain
from portal.health import executor as probes
from tests.conftest import apply_storage
from tests.health_helpers import Hangs, Quick
from tests.log_helpers import Arbiter

pytestmark = pytest.mark.usefixtures("no_probe_cache")


@pytest.fixture
def timers(monkeypatch):
    set_to = []
    monkeypatch.setattr(drain.signal, "setitimer", lambda which, seconds: set_to.append(seconds))
    monkeypatch.setattr(drain.signal, "signal", lambda *args: None)
    # install() exports the marker in os.environ: put it back as it was after the test.
    monkeypatch.setenv(drain.MARKER_ENV, "unset")
    monkeypatch.delenv(drain.MARKER_ENV)
    return set_to


# --- portal.health.drain: a marker of an earlier master with the same pid ------------------


def test_a_marker_left_by_an_earlier_master_with_this_pid_does_not_drain(
    db, portal_storage, tmp_path, timers
):
    # A container restart (or a reboot) gives the new master the pid of the old one, which
    # was killed mid-drain: its marker is still in the worker tmp dir.
    stale = tmp_path / f"portal-drain-{os.getpid()}"
    stale.touch()
    arbiter = Arbiter(tmp_path)
    drain.ShutdownDrain.install(arbiter, 10)
    assert os.environ[drain.MARKER_ENV] == str(stale)
    assert not stale.exists()
    assert drain.reason() is None
    response = Client().get("/ready")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "ok"
    assert (timers, arbiter.stopped) == ([], 0)
    arbiter.handle_term()  # this master's own SIGTERM drains as usual
    assert stale.exists() and drain.reason() == "shutdown"
    assert Client().get("/ready").json() == {"status": "draining", "reason": "shutdown"}


def test_the_marker_lives_in_the_system_tmp_dir_without_a_worker_tmp_dir(tmp_path, timers):
    arbiter = Arbiter(tmp_path)
    arbiter.cfg.worker_tmp_dir = None
    drain.ShutdownDrain.install(arbiter, 5)
    marker = os.path.join(tempfile.gettempdir(), f"portal-drain-{os.getpid()}")
    assert os.environ[drain.MARKER_ENV] == marker
    try:
        arbiter.handle_term()
        assert os.path.exists(marker) and drain.reason() == "shutdown"
    finally:
        drain.clear_marker()
    assert not os.path.exists(marker)


# --- portal.health.executor: one hung check holds one thread, not the others ----------------


def test_three_hung_checks_leave_a_thread_for_a_fourth():
    """One thread per readiness check (database, two storages) plus a spare: the default
    pool runs a fourth check at once while the three others hang."""
    pool = probes.SingleFlightExecutor()
    release = threading.Event()
    hung = [Hangs(name, release) for name in ("database", "temp", "final")]
    try:
        followers = [pool.submit(check.run) for check in hung]
        for check in hung:
            assert check.started.wait(2), f"{check.name} never started: the pool is too small"
        assert pool.submit(Quick().run).result(timeout=2) == "quick"
        assert not any(f.done() for f in followers)
    finally:
        release.set()
    assert [f.result(timeout=5) for f in followers] == ["database", "temp", "final"]


class SilentS3:
    """A TCP endpoint that takes connections and never answers: an S3 that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.endpoint = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self):
        self.sock.close()  # queued connections get a reset: a hung call ends


def test_a_hung_storage_check_does_not_hold_up_the_other_checks(db, settings, data_dir):
    apply_storage(settings, "local", data_dir)
    silent = SilentS3()
    config = Base()
    config.PORTAL_STORAGE = "s3"
    config.AWS_STORAGE_BUCKET_NAME = "hangs"
    config.AWS_S3_ENDPOINT_URL = silent.endpoint
    config.AWS_ACCESS_KEY_ID = config.AWS_SECRET_ACCESS_KEY = "testing"
    config.AWS_S3_REGION_NAME = "us-east-1"
    config.AWS_S3_CONNECT_TIMEOUT_SECONDS = 1.0
    config.AWS_S3_READ_TIMEOUT_SECONDS = 5.0  # longer than the probe waits
    config.AWS_S3_MAX_ATTEMPTS = 1
    settings.STORAGES = {**settings.STORAGES, "portal_temp": config.STORAGES["portal_temp"]}
    settings.PORTAL_HEALTH_CHECK_TIMEOUT_SECONDS = 0.5
    try:
        started = time.monotonic()
        response = Client().get("/ready")
        elapsed = time.monotonic() - started
    finally:
        silent.close()
        # The hung call ends with the reset; later probes (other tests) must not share it.
        for shared, _ in list(probes.executor._in_flight.values()):
            with contextlib.suppress(Exception):
                shared.result(timeout=10)
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "ok",
        "storage:portal_temp": "unavailable",
        "storage:portal_final": "ok",
    }
    assert elapsed < 4, elapsed  # the probe waits 0.25 + 1 s for the hung check
