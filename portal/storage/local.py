"""Local disk: a storage that never creates its own root, threaded deletes, listing.

Keys are mapped to paths with a cheap check instead of ``FileSystemStorage.path()`` (see
``local_path``); deletes run in a few threads (``unlink`` releases the GIL, and keys spread
over 256 shard directories let the kernel run them side by side).
"""

import contextlib
import errno
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial

from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import FileSystemStorage
from django.utils._os import safe_makedirs

from portal.storage.objects import DeleteResult, ListedObject

# Local deletes: up to 8 threads, each with at least 64 keys (below that, one thread).
# On a 2-core ext4 host, 8 threads unlink about 3x faster than one.
LOCAL_DELETE_THREADS = 8
LOCAL_DELETE_MIN_PER_THREAD = 64
# A missing object counts as deleted, but not when the whole root is gone: an unmounted
# volume would otherwise make every tracked key look deleted and be forgotten.
ROOT_MISSING_REASON = "storage root is missing (volume not mounted?)"
ROOT_MISSING = f"FileNotFoundError: {ROOT_MISSING_REASON}"


class StorageRootMissing(FileNotFoundError):
    """The local storage's root directory is gone: an outage, never "nothing stored"."""

    def __init__(self, location):
        super().__init__(errno.ENOENT, ROOT_MISSING_REASON, location)


class LocalStorage(FileSystemStorage):
    """``FileSystemStorage`` that refuses to write when its root directory is missing.

    Django's ``_save`` creates every missing directory up to the root; here the root must
    exist (only the shard directories below it are created), so a probe, an upload or a
    job never recreates an unmounted volume's mount point.
    """

    def _save(self, name, content):
        ensure_root(self)
        return super()._save(name, content)


def ensure_root(storage):
    """``StorageRootMissing`` unless ``storage``'s root directory exists."""
    if not os.path.isdir(storage.location):
        raise StorageRootMissing(storage.location)


@contextlib.contextmanager
def created_file(storage, path, *, truncate=False):
    """An fd open for writing on ``path`` under ``storage``'s existing root, for the block.

    The directories are created as ``FileSystemStorage._save`` creates them; the file is
    new (``O_EXCL``) unless ``truncate``. After the block the file has the storage's file
    mode; when the block fails the file is removed.
    """
    make_parent(storage, path)
    mode = os.O_RDWR | os.O_TRUNC if truncate else os.O_WRONLY | os.O_EXCL
    fd = os.open(path, mode | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        try:
            yield fd
        finally:
            os.close(fd)
        if storage.file_permissions_mode is not None:
            os.chmod(path, storage.file_permissions_mode)
    except BaseException:
        unlink_quietly(path)
        raise


def make_parent(storage, path):
    """The directories above ``path``, under ``storage``'s root, which must exist, made as
    ``FileSystemStorage._save`` makes them (with the storage's directory mode)."""
    ensure_root(storage)
    directory = os.path.dirname(path)
    if storage.directory_permissions_mode is None:
        os.makedirs(directory, exist_ok=True)
    else:
        safe_makedirs(directory, storage.directory_permissions_mode, exist_ok=True)


def unlink_quietly(path):
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def delete_local(storage, keys):
    """Unlink in a few threads: ``unlink`` releases the GIL and, with keys spread over
    256 shard directories, the kernel runs them side by side (``bench/cleanup.py``)."""
    root = storage.location
    paths = [local_path(root, key) for key in keys]
    threads = max(1, min(LOCAL_DELETE_THREADS, len(paths) // LOCAL_DELETE_MIN_PER_THREAD))
    unlink = partial(unlink_all, root=root)
    if threads == 1:
        errors = unlink(paths)
    else:
        errors = {}
        with ThreadPoolExecutor(threads, thread_name_prefix="portal-unlink") as pool:
            for failed in pool.map(unlink, [paths[i::threads] for i in range(threads)]):
                errors.update(failed)
    result = DeleteResult()
    for key, path in zip(keys, paths, strict=True):
        if path in errors:
            result.failed[key] = errors[path]
        else:
            result.deleted.append(key)
    return result


def local_path(root, key):
    """``root/key``, refusing a key that could leave the root.

    ``FileSystemStorage.path`` does the same through ``safe_join`` at about 8 us a key,
    a tenth of a whole unlink; keys here come from our own rows and listings.
    """
    if not key or key.startswith("/") or ".." in key.split("/") or "\0" in key:
        raise SuspiciousFileOperation(f"refusing storage key {key!r}")
    return os.path.join(root, key)


def unlink_all(paths, *, root):
    """Unlink ``paths``; return {path: reason} for those that failed (missing is deleted)."""
    errors = {}
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            if not os.path.isdir(root):
                errors[path] = ROOT_MISSING
        except OSError as exc:
            errors[path] = f"{type(exc).__name__}: {exc.strerror or exc}"
    return errors


def list_local(storage):
    """Walk the temp root; a missing root or any other error (an outage) propagates."""
    root = storage.location
    if not os.path.isdir(root):
        raise StorageRootMissing(root)
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            entries = os.scandir(directory)
        except FileNotFoundError:
            continue  # a shard removed meanwhile
        with entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    try:
                        modified = datetime.fromtimestamp(entry.stat().st_mtime, UTC)
                    except FileNotFoundError:
                        continue  # deleted while we walked
                    key = os.path.relpath(entry.path, root).replace(os.sep, "/")
                    yield ListedObject(key=key, modified_at=modified)


def free_bytes(root):
    """Bytes a non-root writer can still put on ``root``'s filesystem.

    A missing root (an unmounted volume) raises ``StorageRootMissing``: no answer is
    better than the free space of the disk under the mount point.
    """
    if not os.path.isdir(root):
        raise StorageRootMissing(root)
    return shutil.disk_usage(root).free
