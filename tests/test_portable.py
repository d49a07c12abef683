"""Portable by construction: the Linux-only speed paths of local storage (OFD range locks,
``fallocate``, ``copy_file_range``, hard links) are looked up at first use, and without
them the same files come out."""

import contextlib
import errno
import os
import random
import subprocess
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from portal import storage
from portal.services import cleanup
from portal.storage import local_assembly, local_in_place
from tests.api_helpers import Api, error_code, make_token, sha256
from tests.conftest import PYTHON, ROOT
from tests.storage_helpers import CHUNK, final_path


@pytest.fixture
def api(client, user, settings, data_dir):
    from tests.conftest import apply_storage

    apply_storage(settings, "local", data_dir)
    return Api(client, make_token(user))


# Each speed path as a platform without it shows: no OFD range locks, no fallocate in libc,
# no copy_file_range, no hard links on the filesystem.
HIDDEN = {
    "nothing": (),
    "every speed path": ("ofd", "fallocate", "copy_file_range", "link"),
    "link and kernel copy": ("copy_file_range", "link"),
}


@pytest.fixture
def hide(monkeypatch):
    """``hide(features)``: the portal as on a platform without them (none by default)."""
    import fcntl

    def refuse_link(*args, **kwargs):
        raise OSError(errno.EPERM, "hard links not supported")

    def hide(features):
        if "ofd" in features:
            monkeypatch.delattr(fcntl, "F_OFD_SETLK")
        if "fallocate" in features:
            monkeypatch.setattr(local_in_place, "_fallocate", lambda: None)
        if "copy_file_range" in features:
            monkeypatch.delattr(os, "copy_file_range")
        if "link" in features:
            monkeypatch.setattr(os, "link", refuse_link)
        local_in_place.available.cache_clear()

    yield hide
    local_in_place.available.cache_clear()


def temp_files():
    """Every file under the temp root (assembly files included)."""
    root = storage.temp_storage().location
    return [os.path.join(top, name) for top, _, names in os.walk(root) for name in names]


@pytest.mark.parametrize("hidden", list(HIDDEN))
def test_upload_finalize_and_cleanup_give_the_same_files_whatever_is_hidden(api, hide, hidden):
    """The same stored bytes and sha256, and nothing left in temp storage after cleanup,
    with every Linux speed path or without them."""
    hide(HIDDEN[hidden])
    assert local_in_place.available() == ("ofd" not in HIDDEN[hidden])
    data = random.Random(27).randbytes(3 * CHUNK + 7)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=[3, 1, 4, 2])
    abandoned = api.start(data, CHUNK)["id"]
    api.upload(abandoned, data[: 2 * CHUNK], CHUNK, order=[2, 1])
    assert api.abort(abandoned).status_code == 204

    assert api.finalize(session).json()["file"]["sha256"] == sha256(data)
    with open(final_path(session), "rb") as stored:
        assert stored.read() == data
    cleanup.run_cleanup(cleanup.CleanupOptions(now=timezone.now() + timedelta(days=30)))
    assert temp_files() == []
    with open(final_path(session), "rb") as stored:
        assert stored.read() == data


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


@pytest.mark.parametrize("hidden", ["nothing", "every speed path"])
def test_a_part_another_request_is_writing_is_409_with_or_without_ofd_locks(api, hide, hidden):
    hide(HIDDEN[hidden])
    data = random.Random(27).randbytes(2 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    with held_elsewhere(session, CHUNK, CHUNK):
        busy = api.put(session, 2, data[CHUNK:])
        assert api.put(session, 1, data[:CHUNK]).status_code == 201  # its neighbour is free
    assert (busy.status_code, error_code(busy)) == (409, "part_in_progress")
    assert api.put(session, 2, data[CHUNK:]).status_code == 201
    assert api.finalize(session).json()["file"]["sha256"] == sha256(data)


def test_manage_py_check_runs_where_the_speed_paths_are_missing():
    """Nothing platform-specific is looked up at import: with ``fallocate`` and OpenSSL's
    ``SHA256_*`` missing from the C libraries, no OFD locks and no ``copy_file_range`` (as
    on macOS, or OpenSSL built without deprecated functions), the first use finds them
    missing instead of every command failing with AttributeError."""
    hide = (
        "import ctypes, fcntl, os, runpy, sys\n"
        "class Without(ctypes.CDLL):\n"
        "    def __getattr__(self, name):\n"
        "        if name == 'fallocate' or name.startswith('SHA256_'):\n"
        "            raise AttributeError(name)\n"
        "        return super().__getattr__(name)\n"
        "ctypes.CDLL = Without\n"
        "del fcntl.F_OFD_SETLK, os.copy_file_range\n"
        "from portal.storage import local_in_place, sha256state\n"
        "assert local_in_place._fallocate() is None and not local_in_place.available()\n"
        "assert not sha256state.available()\n"
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


def test_a_copy_of_several_buffers_comes_out_whole(api, hide):
    """Without the kernel copy and links the final object is copied a buffer at a time:
    a file of several buffers, not a multiple of one, comes out byte for byte."""
    hide(HIDDEN["link and kernel copy"])
    data = random.Random(31).randbytes(2 * local_assembly.COPY_BUFFER_BYTES + 12_345)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK)
    assert api.finalize(session).json()["file"]["sha256"] == sha256(data)
    with open(final_path(session), "rb") as stored:
        assert stored.read() == data
