"""Shared fixtures: isolated storage roots, a real S3 endpoint (moto server), subprocess env.

The suite's storage backend is local files by default; ``PORTAL_TEST_STORAGE=s3`` runs
every storage-touching test against a moto server on loopback instead (``.ci/run`` does
both). The database is whatever ``DATABASE_URL`` names (SQLite by default), with the test
database in a file so that subprocesses (commands, gunicorn) can share it.
"""

import logging
import os
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import boto3
import pytest
from django.conf import settings as django_settings
from django.db import connection

from tests.basics import PYTHON, ROOT, free_port
from tests.fixtures import *  # noqa: F403  (fixtures, shared)
from tests.storage_env import apply_storage, storage_env

TEST_STORAGE = os.environ.get("PORTAL_TEST_STORAGE", "local")


# A test that touches the suite's storage asks for one of these (the default roots point
# nowhere, so one that does not cannot pass): the set CI's S3 pass runs.
STORAGE_FIXTURES = {"portal_storage", "any_storage", "moto_s3", "moto_s3_factory"}


def pytest_addoption(parser):
    parser.addoption(
        "--storage-tests-only",
        action="store_true",
        help="run only the tests that use the suite's storage (CI's S3 pass: the others "
        "would repeat what the first pass ran)",
    )


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--storage-tests-only"):
        return
    selected, deselected = [], []
    for item in items:
        (selected if STORAGE_FIXTURES & set(item.fixturenames) else deselected).append(item)
    config.hook.pytest_deselected(items=deselected)
    items[:] = selected


def pytest_configure(config):
    # Subprocesses started by the tests load the same configuration.
    os.environ.setdefault("DJANGO_CONFIGURATION", "Test")
    # moto's embedded werkzeug server logs every request at INFO.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    _default_storage_roots_missing()


def _default_storage_roots_missing():
    """Point the default local storages at roots that do not exist.

    A test that touches storage must say so (``portal_storage``, ``any_storage``, or
    ``apply_storage``). Without this, one that forgets would write into the checkout's
    ``var/`` whenever ``make run`` created it there, pass, and fail on a clean clone.
    """
    from django.conf import settings

    nowhere = Path(tempfile.gettempdir()) / f"portal-tests-{os.getpid()}-no-storage-root"
    storages = {alias: dict(spec) for alias, spec in settings.STORAGES.items()}
    for alias in ("portal_temp", "portal_final"):
        options = dict(storages[alias].get("OPTIONS", {}))
        if "location" in options:
            options["location"] = str(nowhere / alias)
            storages[alias]["OPTIONS"] = options
    settings.STORAGES = storages


class MotoS3:
    """A moto S3 server on loopback that a test may stop and start again (an outage)."""

    def __init__(self, attempts=5):
        self.server = None
        for attempt in range(attempts):
            # A free port may be taken again before moto binds it: then take another.
            self.port = free_port()
            try:
                self.start(timeout=0)
                return
            except OSError:
                if attempt == attempts - 1:
                    raise

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=10):
        """Serve on ``self.port`` (again, after an outage). moto's ThreadedMotoServer waits
        forever when its thread cannot bind (werkzeug exits that thread), and its stop leaves
        the listening socket open; here a bind failure is retried, bounded, and raised."""
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app = DomainDispatcherApplication(create_backend_app)
        deadline = time.monotonic() + timeout
        while True:
            try:
                server = make_server(
                    "127.0.0.1", self.port, app, True, request_handler=MotoRequestHandler
                )
                break
            except (OSError, SystemExit) as exc:  # werkzeug exits on a port in use
                if time.monotonic() > deadline:
                    raise OSError(f"moto cannot listen on 127.0.0.1:{self.port}") from exc
                time.sleep(0.1)
        self.server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def new_bucket(self):
        name = f"portal-test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def moto_s3():
    """One moto server for the session (tests that stop it use ``moto_s3_factory``)."""
    server = MotoS3()
    yield server
    server.stop()


@pytest.fixture
def moto_s3_factory():
    """Start private moto servers a test may stop (outages); all are stopped at the end."""
    servers = []

    def make():
        servers.append(MotoS3())
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def data_dir(tmp_path):
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def runner():
    """A real runner on loopback (``tests/runner.py``): answers 200, checks signatures."""
    from tests.outbox_helpers import SECRET
    from tests.runner import RunnerServer

    with RunnerServer("ok", secret=SECRET) as server:
        yield server


@pytest.fixture
def runner_settings(settings, runner, portal_storage):
    """Settings that point the dispatcher at ``runner``."""
    from tests.outbox_helpers import point_at_runner

    return point_at_runner(settings, runner)


@pytest.fixture
def portal_storage(settings, data_dir, request):
    """The suite's storage backend (``PORTAL_TEST_STORAGE``), isolated per test.

    Returns the environment a subprocess needs to use the same storage.
    """
    if TEST_STORAGE == "s3":
        s3 = request.getfixturevalue("moto_s3")
        return apply_storage(settings, "s3", data_dir, s3=s3, bucket=s3.new_bucket())
    return apply_storage(settings, "local", data_dir)


@pytest.fixture(params=["local", "s3"])
def any_storage(request, settings, data_dir):
    """Both backends, one after the other: for the storage contract tests.

    Returns the environment a subprocess needs to use the same storage.
    """
    if request.param == "s3":
        s3 = request.getfixturevalue("moto_s3")
        return apply_storage(settings, "s3", data_dir, s3=s3, bucket=s3.new_bucket())
    return apply_storage(settings, "local", data_dir)


def database_url():
    """A URL for the database the tests use right now (the test database)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    user = db.get("USER") or "postgres"
    return f"postgres://{user}@{host}:{port}/{db['NAME']}"


@pytest.fixture
def subprocess_env(portal_storage, transactional_db):
    """Environment for a ``manage.py`` subprocess that shares this test's database and storage."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTAL_", "AWS_", "DATABASE_URL", "DJANGO_"))
    }
    env.update(portal_storage)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "boot.settings",
            "DJANGO_CONFIGURATION": "Test",
            "DATABASE_URL": database_url(),
            "PORTAL_LOG_FORMAT": "json",
            "PORTAL_LOG_LEVEL": "info",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


LOCK_HOLDER = """
import sys, time, django
from configurations import importer
importer.install()
django.setup()
from portal import locks
with locks.hold(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


class LockHolder(subprocess.Popen):
    """A process holding a named ``portal.locks`` lock; ``release()`` kills it and returns
    once the lock is free (PostgreSQL drops a dead client's advisory locks a moment after
    the process is gone, not at once)."""

    def release(self, name, timeout=10):
        from portal import locks

        self.kill()
        self.wait()
        deadline = time.monotonic() + timeout
        while True:
            try:
                with locks.hold(name):
                    return
            except locks.LockBusy:
                assert time.monotonic() < deadline, f"lock {name} still held after {timeout} s"
                time.sleep(0.02)


@pytest.fixture
def lock_holder(subprocess_env):
    """Start processes that hold a named ``portal.locks`` lock until the test ends."""
    procs = []

    def start(name):
        proc = LockHolder(
            [PYTHON, "-c", LOCK_HOLDER, name],
            cwd=ROOT,
            env=subprocess_env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout.readline().strip() == "held"
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://...")


@pytest.fixture
def user(transactional_db, django_user_model):
    """An upload client's user. Transactional: a finalize assembles in a thread of its own,
    on a connection of its own, which must see what the test wrote."""
    return django_user_model.objects.create_user(username="alice", password="pw-alice-123")


@pytest.fixture
def other_user(transactional_db, django_user_model):
    return django_user_model.objects.create_user(username="bob", password="pw-bob-123")


__all__ = ["PYTHON", "ROOT", "django_settings", "free_port", "storage_env"]


@pytest.fixture
def volumes(small_volume, settings, data_dir):
    """temp and final on local disk, each its own 512 KiB volume (a finalize copies), new
    sessions refused below 128 KiB free: ``(temp, final)``."""
    from tests.volumes import KIB

    temp = small_volume(data_dir / "temp", 512 * KIB)
    final = small_volume(data_dir / "final", 512 * KIB)
    apply_storage(settings, "local", data_dir)
    settings.PORTAL_MIN_FREE_BYTES = 128 * KIB
    return temp, final
