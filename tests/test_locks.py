"""Named locks: one holder across processes, released when the holder dies."""

import os
import signal
import threading
import time

import pytest
from django.db import connection, connections

from portal import locks


def test_second_holder_is_refused_until_the_first_dies(lock_holder):
    proc = lock_holder("cleanup")
    with pytest.raises(locks.LockBusy), locks.hold("cleanup"):
        pass
    with locks.hold("another-name"):
        pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while True:
        try:
            with locks.hold("cleanup"):
                break
        except locks.LockBusy:
            assert time.monotonic() < deadline, "lock not released after SIGKILL"
            time.sleep(0.1)


def test_lock_is_reentrant_after_release(transactional_db, portal_storage):
    with locks.hold("x"):
        pass
    with locks.hold("x"):
        pass


def test_a_file_lock_leaves_no_file_behind(transactional_db, settings, tmp_path):
    """One lock per finalized session: on SQLite the files must not pile up."""
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("file locks are SQLite's; PostgreSQL takes advisory locks")
    settings.PORTAL_DATA_DIR = str(tmp_path)
    with locks.hold("finalize:1"):
        assert len(list((tmp_path / "locks").iterdir())) == 1
        with pytest.raises(locks.LockBusy), locks.hold("finalize:1"):
            pass
    assert list((tmp_path / "locks").iterdir()) == []
    with locks.hold("finalize:1"):
        pass


def test_a_lock_file_removed_by_its_last_holder_is_not_trusted(tmp_path):
    """A process that opened the file just before its holder removed it locks a file no
    path names: it must lock what the path names now instead."""
    path = tmp_path / "x.lock"
    path.touch()
    stale = os.open(path, os.O_RDWR)
    path.unlink()  # the holder let go
    try:
        assert not locks._names(path, stale)
        fresh = locks._locked_file(path, "x")
        assert locks._names(path, fresh)
        with pytest.raises(locks.LockBusy):
            locks._locked_file(path, "x")
        os.close(fresh)
    finally:
        os.close(stale)


def test_a_file_lock_is_refused_while_held_in_the_same_process(settings, tmp_path):
    if connection.vendor == "postgresql":
        pytest.skip("SQLite's file locks (PostgreSQL: the test below)")
    settings.PORTAL_DATA_DIR = str(tmp_path)
    with locks.hold("store-pin"):
        with pytest.raises(locks.LockBusy), locks.hold("store-pin"):
            pass
        with locks.hold("store-pin-2"):
            pass
    with locks.hold("store-pin"):
        pass


@pytest.mark.postgres
def test_a_postgres_lock_is_held_per_name_and_released_on_exit(transactional_db, postgres_only):
    held, released, checked = threading.Event(), threading.Event(), threading.Event()
    failures = []

    def holder():
        try:
            with locks.hold("range:a"):
                held.set()
                checked.wait(10)
            checked.clear()
            released.set()
            checked.wait(10)  # the connection stays open: only the unlock frees the lock
        except Exception as exc:
            failures.append(exc)
            held.set()
            released.set()
        finally:
            connections.close_all()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(10)
        with pytest.raises(locks.LockBusy), locks.hold("range:a"):
            pass
        with locks.hold("range:b"):
            pass
        checked.set()
        assert released.wait(10)
        with locks.hold("range:a"):
            pass
    finally:
        checked.set()
        thread.join(10)
    assert failures == []
