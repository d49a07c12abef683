"""Named, non-blocking, crash-safe locks shared by every host: one holder at a time.

PostgreSQL: a session-level advisory lock on this thread's ``default`` connection. SQLite
(one host by nature): an ``flock`` on a file under ``PORTAL_DATA_DIR/locks``. Either is
released when the holder dies.
"""

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path

from django.conf import settings
from django.db import connections


class LockBusy(Exception):
    pass


def hold(name):
    """Hold lock ``name`` for the ``with`` block, or raise ``LockBusy`` at once if it is taken."""
    connection = connections["default"]
    if connection.vendor == "postgresql":
        return _postgres_lock(connection, name)
    return _file_lock(name)


@contextlib.contextmanager
def _postgres_lock(connection, name):
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
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
    """``flock`` on a file per name, removed on release (one per finalized session would pile
    up); a holder killed outright leaves it for the next one."""
    directory = Path(settings.PORTAL_DATA_DIR) / "locks"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (hashlib.sha256(name.encode()).hexdigest()[:32] + ".lock")
    fd = _locked_file(path, name)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def _locked_file(path, name, attempts=100):
    """Open and lock ``path``, again if the file locked is no longer the one the path names
    (its holder removed it meanwhile), or two processes would both hold the lock."""
    for _ in range(attempts):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockBusy(name) from None
        if _names(path, fd):
            return fd
        os.close(fd)
    raise LockBusy(name)


def _names(path, fd):
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)
