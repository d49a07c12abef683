"""Named, non-blocking, crash-safe locks shared by every host: one holder at a time.

PostgreSQL: a session-level advisory lock on the process's ``default`` connection
(Django's per-thread connection), released when the block ends or when the process dies
(the server drops the session); a connection that broke while the lock was held is
closed, since its session, and with it the lock, is gone already. SQLite (one host by
nature): an ``flock`` on a file under ``PORTAL_DATA_DIR/locks``, released by the kernel when
the process dies. Used for the single cleanup run and for one finalize per session.
"""

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path

from django.conf import settings
from django.db import connections


class LockBusy(Exception):
    """Another process holds the lock."""


def _advisory_key(name):
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def hold(name):
    """Hold lock ``name`` for the block, or raise ``LockBusy`` at once if it is taken."""
    connection = connections["default"]
    if connection.vendor == "postgresql":
        with _postgres_lock(connection, name):
            yield
    else:
        with _file_lock(name):
            yield


@contextlib.contextmanager
def _postgres_lock(connection, name):
    key = _advisory_key(name)
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        (acquired,) = cursor.fetchone()
    if not acquired:
        raise LockBusy(name)
    try:
        yield
    finally:
        if connection.is_usable():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        else:
            connection.close()  # a dead connection already lost its session lock


@contextlib.contextmanager
def _file_lock(name):
    directory = Path(settings.PORTAL_DATA_DIR) / "locks"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (hashlib.sha256(name.encode()).hexdigest()[:32] + ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockBusy(name) from None
        yield
    finally:
        os.close(fd)
