"""Fixtures a few test modules share, kept out of ``conftest.py`` (which imports them)."""

import contextlib

import pytest


@pytest.fixture
def no_probe_cache(settings):
    """Each probe runs its checks afresh (no cached result, none left for the next test),
    with a check timeout a busy machine meets."""
    from portal.health import executor

    settings.PORTAL_READY_CACHE_SECONDS = 0
    settings.PORTAL_HEALTH_CHECK_TIMEOUT_SECONDS = 30
    executor.results.clear()
    yield settings
    executor.results.clear()


@pytest.fixture
def staff(db, django_user_model):
    """A client logged in as a staff member (who may read /status and /metrics)."""
    from django.test import Client

    person = django_user_model.objects.create_user("oncall", password="pw-oncall", is_staff=True)
    client = Client()
    client.force_login(person)
    return client


@pytest.fixture
def upload_file(tmp_path, monkeypatch):
    """A 305-byte file for ``portal_upload`` (4 parts of 100, each different), with a token."""
    monkeypatch.setenv("PORTAL_TOKEN", "tok")
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)) + b"x" * 49)
    return path


@pytest.fixture
def slept(monkeypatch):
    """The delays ``portal_upload`` would have slept, in order, without sleeping them."""
    from portal.management.commands import portal_upload

    delays = []
    monkeypatch.setattr(portal_upload.time, "sleep", delays.append)
    return delays


@pytest.fixture
def terminal(monkeypatch):
    """``terminal()`` makes standard error a terminal (progress lines are drawn only there)
    and returns it to read back; called in the test, as pytest resets ``sys.stderr`` after
    set-up."""
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    def make():
        monkeypatch.setattr("sys.stderr", stream := Terminal())
        return stream

    return make


@pytest.fixture
def small_volume():
    """``mount(path, size, *options)``: a real tmpfs at ``path`` (``tests.volumes``),
    unmounted at the end of the test."""
    from tests.volumes import mount_small_volume, unmount

    mounted = []

    def mount(path, size, *options):
        mounted.append(mount_small_volume(path, size, *options))
        return path

    yield mount
    for path in reversed(mounted):
        unmount(path)


@contextlib.contextmanager
def written_assembly(session):
    """A local in-place assembly file of ``session`` holding 100 bytes of b"p":
    ``(key, temp, final, fd)`` with ``fd`` open for reading (closed after the block), as
    finalize holds it when it links the final name."""
    import io
    import os

    from portal import storage

    with storage.backend().part_range(session, 0, 100) as place:
        place.write(io.BytesIO(b"p" * 100), max_bytes=100)
    key = storage.assembly_key(session)
    temp, final = storage.temp_storage(), storage.final_storage()
    fd = os.open(temp.path(key), os.O_RDONLY)
    try:
        yield key, temp, final, fd
    finally:
        os.close(fd)


@pytest.fixture
def operator(db, django_user_model):
    """Staff with the change permission on outbox events: may requeue."""
    from tests.status_helpers import make_staff

    return make_staff(django_user_model, "oncall", can_change=True)


@pytest.fixture
def clean(settings):
    """Settings every cross-field rule accepts; a test then moves one value."""
    from portal import checks as syschecks
    from tests.settings_helpers import MIB, STRONG

    settings.PORTAL_CHUNK_SIZE_MIN = settings.PORTAL_CHUNK_SIZE = 8 * MIB
    settings.PORTAL_CHUNK_SIZE_MAX = settings.PORTAL_MAX_FILE_SIZE = 16 * MIB
    settings.PORTAL_OUTBOX_BASE_DELAY_SECONDS = settings.PORTAL_OUTBOX_MAX_DELAY_SECONDS = 30.0
    settings.PORTAL_MIN_FREE_BYTES = 2 * MIB
    settings.PORTAL_FREE_SPACE_RESERVE_BYTES = 2 * MIB - 1
    settings.PORTAL_RUNNER_ENDPOINT = ""
    settings.PORTAL_STORAGE = "local"
    settings.SECRET_KEY = STRONG
    settings.PORTAL_METRICS_TOKEN = ""
    assert syschecks.check_settings() == []
    return settings


@pytest.fixture
def capture():
    """Make a logger whose handler is the portal's (context, redaction, formatter) on a stream."""
    import io
    import logging
    import uuid

    from boot.logging import ConsoleFormatter, PortalJsonFormatter
    from portal.observability import ContextFilter, RedactingFilter

    made = []

    def make(fmt="json", secrets=()):
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.addFilter(ContextFilter())
        handler.addFilter(RedactingFilter(secrets=secrets))
        handler.setFormatter(PortalJsonFormatter() if fmt == "json" else ConsoleFormatter())
        logger = logging.getLogger(f"portal.test_logging.{uuid.uuid4().hex[:8]}")
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        made.append((logger, handler))
        return logger, stream

    yield make
    for logger, handler in made:
        logger.removeHandler(handler)


@pytest.fixture
def json_capture():
    """``capture`` in JSON whose second half reads the records back: ``(logger, records)``."""
    import io
    import json
    import logging
    import uuid

    from boot.logging import PortalJsonFormatter
    from portal.observability import ContextFilter, RedactingFilter

    made = []

    def make(secrets=()):
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.addFilter(ContextFilter())
        handler.addFilter(RedactingFilter(secrets=secrets))
        handler.setFormatter(PortalJsonFormatter())
        logger = logging.getLogger(f"portal.test_pins_ops.{uuid.uuid4().hex[:8]}")
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        made.append((logger, handler))
        return logger, lambda: [json.loads(line) for line in stream.getvalue().splitlines()]

    yield make
    for logger, handler in made:
        logger.removeHandler(handler)


@pytest.fixture
def writers(tmp_path):
    """Processes writing prometheus-client's multiprocess directory ``tmp_path``."""
    from tests.multiproc_helpers import Writers

    w = Writers(tmp_path)
    yield w
    w.stop()


@pytest.fixture
def api(client, user, portal_storage):
    """The upload API as ``user``, on the suite's storage."""
    from tests.api_helpers import Api, make_token

    return Api(client, make_token(user))


@pytest.fixture
def local_api(client, user, settings, data_dir):
    """The upload API as ``user``, on local disk whatever the suite's storage."""
    from tests.api_helpers import Api, make_token
    from tests.storage_env import apply_storage

    apply_storage(settings, "local", data_dir)
    return Api(client, make_token(user))


@pytest.fixture
def local(settings, data_dir):
    """Local disk storage under ``data_dir``, whatever the suite's storage."""
    from tests.storage_env import apply_storage

    apply_storage(settings, "local", data_dir)


@pytest.fixture(scope="session")
def node_modules():
    """The npm clients in .cache/node (gitignored), installed from package.json if needed."""
    from tests.node_clients import install_node_clients

    return install_node_clients()


@pytest.fixture
def sockets():
    """A connected pair of sockets, ``(server, client)``; the server side times out."""
    import socket

    server, client = socket.socketpair()
    server.settimeout(10)  # a reader that waits for bytes never sent fails, not hangs
    with server, client:
        yield server, client


@pytest.fixture
def timers(monkeypatch):
    """gunicorn's drain without its signals: the seconds each ``setitimer`` was set to."""
    from portal.health import drain

    set_to = []
    monkeypatch.setattr(drain.signal, "setitimer", lambda which, seconds: set_to.append(seconds))
    monkeypatch.setattr(drain.signal, "signal", lambda *args: None)
    monkeypatch.delenv(drain.MARKER_ENV, raising=False)
    return set_to


@pytest.fixture
def tus(client, user, portal_storage, settings):
    """The tus API as ``user``, parts of ``tests.tus_helpers.CHUNK`` bytes."""
    from tests.api_helpers import make_token
    from tests.tus_helpers import CHUNK, Tus

    settings.PORTAL_CHUNK_SIZE = CHUNK
    return Tus(client, make_token(user))


@contextlib.contextmanager
def row_locked(queryset):
    """Another connection holds ``queryset``'s rows ``FOR UPDATE`` for the block (as a
    concurrent claimer would), then lets go."""
    import threading

    from django.db import connections, transaction

    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                list(queryset.select_for_update())
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        yield
    finally:
        release.set()
        holder.join(10)
