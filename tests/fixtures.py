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
