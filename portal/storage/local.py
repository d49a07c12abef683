"""Local disk: a storage that never creates its own root, threaded deletes, listing; every
path under a root reached through ``local_walk``, so no link below the root is followed.
"""

import contextlib
import os
import shutil
import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from itertools import groupby

from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File
from django.core.files.storage import FileSystemStorage

from portal.storage import DeleteResult, ListedObject, local_walk
from portal.storage.local_walk import ROOT_MISSING_REASON, StorageRootMissing

# Local deletes: up to 8 threads, each with at least 64 keys (below that, one thread).
# On a 2-core ext4 host, 8 threads unlink about 3x faster than one.
LOCAL_DELETE_THREADS = 8
LOCAL_DELETE_MIN_PER_THREAD = 64
# A missing object counts as deleted, but not when the whole root is gone: an unmounted
# volume would otherwise make every tracked key look deleted and be forgotten.
ROOT_MISSING = f"FileNotFoundError: {ROOT_MISSING_REASON}"


class LocalStorage(FileSystemStorage):
    """``FileSystemStorage`` that never follows a link below its root and never creates
    the root itself (Django's ``_save`` would): a probe, an upload or a job must not
    recreate an unmounted volume's mount point."""

    def _save(self, name, content):
        with (
            created_file(self, name, replace=self._allow_overwrite) as fd,
            open(fd, "wb", closefd=False) as out,
        ):
            for chunk in content.chunks():
                out.write(chunk.encode() if isinstance(chunk, str) else chunk)
        return name

    def _open(self, name, mode="rb"):
        return File(open_read(self, name), name)

    def delete(self, name):
        unlink_quietly(self, name)


def ensure_root(storage):
    if not os.path.isdir(storage.location):
        raise StorageRootMissing(storage.location)


@contextlib.contextmanager
def key_dir(storage, key, *, create=False):
    """``(Dir, leaf)`` of ``key`` under ``storage``'s existing root (``local_walk``)."""
    check_key(key)
    mode = storage.directory_permissions_mode
    with local_walk.parent_of(storage.location, key, create=create, mode=mode) as found:
        yield found


@contextlib.contextmanager
def created_file(storage, key, *, replace=False):
    """An fd on the new file ``key``, with the storage's file mode after the block and
    removed when the block fails. Always a new inode (``O_EXCL``; ``replace`` first
    removes a file left at ``key``): no byte goes into a file somebody else holds a name of.
    """
    with key_dir(storage, key, create=True) as (directory, leaf):
        if replace:
            with contextlib.suppress(FileNotFoundError):
                local_walk.unlink(directory, leaf)
        mode = os.O_RDWR if replace else os.O_WRONLY
        fd = local_walk.open_file(directory, leaf, mode | os.O_CREAT | os.O_EXCL)
        try:
            try:
                yield fd
                if storage.file_permissions_mode is not None:
                    os.fchmod(fd, storage.file_permissions_mode)
            finally:
                os.close(fd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                local_walk.unlink(directory, leaf)
            raise


def open_read(storage, key):
    with key_dir(storage, key) as (directory, leaf):
        return os.fdopen(local_walk.open_file(directory, leaf, os.O_RDONLY), "rb")


def unlink_quietly(storage, key):
    """Remove ``key`` (a missing one, or its directory, is fine)."""
    with contextlib.suppress(FileNotFoundError), key_dir(storage, key) as (directory, leaf):
        local_walk.unlink(directory, leaf)


def delete_local(storage, keys):
    """Unlink in a few threads, one walk per directory: ``unlink`` releases the GIL and,
    with keys spread over 256 shard directories, the kernel runs them side by side
    (``bench/cleanup.py``)."""
    for key in keys:
        check_key(key)
    directories = [list(group) for _, group in groupby(sorted(keys, key=_parent), key=_parent)]
    threads = max(1, min(LOCAL_DELETE_THREADS, len(keys) // LOCAL_DELETE_MIN_PER_THREAD))
    unlink = partial(_unlink_directory, storage)
    errors = {}
    with ThreadPoolExecutor(threads, thread_name_prefix="portal-unlink") as pool:
        for failed in pool.map(unlink, directories) if threads > 1 else map(unlink, directories):
            errors.update(failed)
    result = DeleteResult()
    for key in keys:
        if key in errors:
            result.failed[key] = errors[key]
        else:
            result.deleted.append(key)
    return result


def check_key(key):
    """Refuse a key that could leave the root: keys come from our own rows and listings,
    and ``FileSystemStorage.path()`` costs 8 us a key, a tenth of an unlink."""
    if not key or key.startswith("/") or ".." in key.split("/") or "\0" in key:
        raise SuspiciousFileOperation(f"refusing storage key {key!r}")


def _parent(key):
    return key.rpartition("/")[0]


def _unlink_directory(storage, keys):
    """Unlink ``keys`` of one directory; {key: reason} for those that failed (a missing
    one is deleted unless the root is gone). A directory that is a symlink fails all."""
    errors = {}
    try:
        with key_dir(storage, keys[0]) as (directory, _leaf):
            for key in keys:
                try:
                    local_walk.unlink(directory, key.rpartition("/")[2])
                except FileNotFoundError:
                    if not os.path.isdir(storage.location):
                        errors[key] = ROOT_MISSING
                except OSError as exc:
                    errors[key] = _reason(exc)
    except FileNotFoundError:
        if not os.path.isdir(storage.location):
            errors.update(dict.fromkeys(keys, ROOT_MISSING))
    except OSError as exc:
        errors.update(dict.fromkeys(keys, _reason(exc)))
    return errors


def _reason(exc):
    return f"{type(exc).__name__}: {exc.strerror or exc}"


def list_local(storage):
    """Walk the root's files (symlinks are neither listed nor followed, by ``os.fwalk``'s
    checks); a missing root or any other error (an outage) propagates, a directory
    removed meanwhile has nothing to list."""
    root = local_walk.open_root(storage.location)
    try:
        for top, _, files, fd in os.fwalk(".", onerror=_raise, dir_fd=root.fd):
            prefix = os.path.relpath(top, ".")
            for name in files:
                try:
                    status = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue  # deleted while we walked
                if stat.S_ISREG(status.st_mode):
                    key = name if prefix == "." else f"{prefix}/{name}"
                    yield ListedObject(key, datetime.fromtimestamp(status.st_mtime, UTC))
    finally:
        root.close()


def _raise(exc):
    if not isinstance(exc, FileNotFoundError):
        raise exc


def free_bytes(storage):
    """Bytes a non-root writer can still put on the volume; none from the disk under the
    mount point when the root is missing (``StorageRootMissing``)."""
    ensure_root(storage)
    return shutil.disk_usage(storage.location).free
