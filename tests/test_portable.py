"""Portable by construction: the Linux-only speed paths of local storage (OFD range locks,
``fallocate``) are looked up at first use, and without them the same files come out."""

import contextlib
import os
import subprocess
import threading

import pytest
from django.db import connection

from portal import storage
from portal.services import cleanup
from portal.storage import local_in_place
from tests import objects
from tests.api_helpers import Api, error_code, make_token, sha256
from tests.conftest import PYTHON, ROOT
from tests.test_in_place import CHUNK, assembly_path, final_path


@pytest.fixture
def api(client, user, settings, data_dir):
    from tests.conftest import apply_storage

    apply_storage(settings, "local", data_dir)
    return Api(client, make_token(user))


@pytest.fixture
def without_linux_extras(monkeypatch):
    """As on a platform without OFD range locks and ``fallocate`` (macOS, say)."""
    import fcntl

    monkeypatch.delattr(fcntl, "F_OFD_SETLK")
    monkeypatch.setattr(local_in_place, "_fallocate", lambda: None)
    local_in_place.available.cache_clear()
    yield
    local_in_place.available.cache_clear()


@contextlib.contextmanager
def held_elsewhere(session, offset, size):
    """A part's range held by another request's thread (its own database connection: a
    PostgreSQL advisory lock is re-entrant within one)."""
    held, done = threading.Event(), threading.Event()

    def hold():
        try:
            with storage.backend().part_range(session, offset, size):
                held.set()
                done.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(10)
        yield
    finally:
        done.set()
        thread.join()


def test_without_the_linux_speed_paths_the_same_files_come_out(api, without_linux_extras):
    """Parts go into the session's file under a named lock per range, finalize links it,
    cleanup clears it: the same file and sha256 as with the speed paths."""
    assert not local_in_place.available()
    data = os.urandom(3 * CHUNK + 7)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=[3, 1, 4, 2])
    assert objects.own_temp_keys() == [] and os.path.exists(assembly_path(session))
    with held_elsewhere(session, CHUNK, CHUNK):
        busy = api.put(session, 2, data[CHUNK : 2 * CHUNK])
    assert (busy.status_code, error_code(busy)) == (409, "part_in_progress")

    assert api.finalize(session).json()["file"]["sha256"] == sha256(data)
    with open(final_path(session), "rb") as stored:
        assert stored.read() == data
    cleanup.cleanup_orphan_temp_parts(cleanup.CleanupOptions())
    assert not os.path.exists(assembly_path(session))


def test_manage_py_check_runs_where_libc_has_no_fallocate():
    """Nothing platform-specific is looked up at import: hidden, as on macOS, the first use
    finds it missing instead of every command failing with AttributeError."""
    hide = (
        "import ctypes, fcntl, runpy, sys\n"
        "class NoFallocate(ctypes.CDLL):\n"
        "    def __getattr__(self, name):\n"
        "        if name == 'fallocate':\n"
        "            raise AttributeError(name)\n"
        "        return super().__getattr__(name)\n"
        "ctypes.CDLL = NoFallocate\n"
        "del fcntl.F_OFD_SETLK\n"
        "from portal.storage import local_in_place\n"
        "assert local_in_place._fallocate() is None and not local_in_place.available()\n"
        "sys.argv = ['manage.py', 'check']\n"
        "runpy.run_path('manage.py', run_name='__main__')\n"
    )
    result = subprocess.run(
        [PYTHON, "-c", hide],
        cwd=ROOT,
        env={**os.environ, "DJANGO_CONFIGURATION": "Dev"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
