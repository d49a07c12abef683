"""Local disk: a storage that never creates its own root, threaded deletes, listing.

Every path under a root is reached through ``local_walk`` (no link below the root is
followed). Keys are checked cheaply instead of through ``FileSystemStorage.path()``
(see ``check_key``); deletes run in a few threads (``unlink`` releases the GIL, and keys
spread over 256 shard directories let the kernel run them side by side).
"""

import contextlib
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from itertools import groupby

from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File
from django.core.files.storage import FileSystemStorage

from portal.storage import local_walk
from portal.storage.local_walk import ROOT_MISSING_REASON, LinkRefused, StorageRootMissing
from portal.storage.objects import DeleteResult, ListedObject

__all__ = ["ROOT_MISSING_REASON", "LinkRefused", "StorageRootMissing"]

# Local deletes: up to 8 threads, each with at least 64 keys (below that, one thread).
# On a 2-core ext4 host, 8 threads unlink about 3x faster than one.
LOCAL_DELETE_THREADS = 8
LOCAL_DELETE_MIN_PER_THREAD = 64
# A missing object counts as deleted, but not when the whole root is gone: an unmounted
# volume would otherwise make every tracked key look deleted and be forgotten.
ROOT_MISSING = f"FileNotFoundError: {ROOT_MISSING_REASON}"


class LocalStorage(FileSystemStorage):
    """``FileSystemStorage`` that refuses to write when its root directory is missing and
    never follows a link below its root (``local_walk``).

    Django's ``_save`` creates every missing directory up to the root; here the root must
    exist (only the directories below it are created), so a probe, an upload or a job
    never recreates an unmounted volume's mount point.
    """

    def _save(self, name, content):
        with created_file(self, name, replace=self._allow_overwrite) as fd:
            for chunk in content.chunks():
                write_all(fd, chunk.encode() if isinstance(chunk, str) else chunk)
        return name

    def _open(self, name, mode="rb"):
        return File(open_read(self, name), name)

    def delete(self, name):
        unlink_quietly(self, name)


def ensure_root(storage):
    """``StorageRootMissing`` unless ``storage``'s root directory exists."""
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
    """An fd open for writing on the new file ``key`` under ``storage``'s existing root,
    for the block.

    The directories are created as ``FileSystemStorage._save`` creates them; the file is
    always a new inode (``O_EXCL``): ``replace`` first removes a file left at ``key``, so
    no byte goes into a file somebody else may hold a name of. After the block the file has
    the storage's file mode; when the block fails the file is removed.
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
    """``key`` opened for reading as a binary file object (``FileNotFoundError``)."""
    with key_dir(storage, key) as (directory, leaf):
        return os.fdopen(local_walk.open_file(directory, leaf, os.O_RDONLY), "rb")


def unlink_quietly(storage, key):
    """Remove ``key`` (a missing one, or its directory, is fine)."""
    with contextlib.suppress(FileNotFoundError), key_dir(storage, key) as (directory, leaf):
        local_walk.unlink(directory, leaf)


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def delete_local(storage, keys):
    """Unlink in a few threads: ``unlink`` releases the GIL and, with keys spread over
    256 shard directories, the kernel runs them side by side (``bench/cleanup.py``).
    Each thread takes its keys directory by directory, one walk per directory."""
    for key in keys:
        check_key(key)
    ordered = sorted(keys, key=_parent)
    threads = max(1, min(LOCAL_DELETE_THREADS, len(keys) // LOCAL_DELETE_MIN_PER_THREAD))
    unlink = partial(unlink_all, storage=storage)
    if threads == 1:
        errors = unlink(ordered)
    else:
        errors = {}
        share = -(-len(ordered) // threads)
        batches = [ordered[i : i + share] for i in range(0, len(ordered), share)]
        with ThreadPoolExecutor(threads, thread_name_prefix="portal-unlink") as pool:
            for failed in pool.map(unlink, batches):
                errors.update(failed)
    result = DeleteResult()
    for key in keys:
        if key in errors:
            result.failed[key] = errors[key]
        else:
            result.deleted.append(key)
    return result


def check_key(key):
    """Refuse a key that could leave the root.

    ``FileSystemStorage.path`` does the same through ``safe_join`` at about 8 us a key,
    a tenth of a whole unlink; keys here come from our own rows and listings.
    """
    if not key or key.startswith("/") or ".." in key.split("/") or "\0" in key:
        raise SuspiciousFileOperation(f"refusing storage key {key!r}")


def local_path(root, key):
    """``root/key`` (checked), for a reader outside the portal."""
    check_key(key)
    return os.path.join(root, key)


def _parent(key):
    return key.rpartition("/")[0]


def unlink_all(keys, *, storage):
    """Unlink ``keys`` (sorted by directory); {key: reason} for those that failed (a
    missing one is deleted). A directory that is a symlink fails all its keys."""
    errors = {}
    for _directory, group in groupby(keys, key=_parent):
        group = list(group)
        try:
            with key_dir(storage, group[0]) as (directory, _leaf):
                for key in group:
                    _unlink_one(directory, key, errors, storage.location)
        except FileNotFoundError:
            if not os.path.isdir(storage.location):
                errors.update(dict.fromkeys(group, ROOT_MISSING))
        except OSError as exc:
            errors.update(dict.fromkeys(group, _reason(exc)))
    return errors


def _unlink_one(directory, key, errors, root):
    try:
        local_walk.unlink(directory, key.rpartition("/")[2])
    except FileNotFoundError:
        if not os.path.isdir(root):
            errors[key] = ROOT_MISSING
    except OSError as exc:
        errors[key] = _reason(exc)


def _reason(exc):
    return f"{type(exc).__name__}: {exc.strerror or exc}"


def list_local(storage):
    """Walk the root's files (symlinks are neither listed nor followed); a missing root or
    any other error (an outage) propagates."""
    root = local_walk.open_root(storage.location)
    try:
        stack = [""]
        while stack:
            prefix = stack.pop()
            yield from _list_directory(root, prefix, stack)
    finally:
        root.close()


def _list_directory(root, prefix, stack):
    """The files of directory ``prefix`` (``"a/b/"``) under ``root``; its directories go
    on ``stack``. One removed meanwhile, or replaced by a link, has nothing to list."""
    try:
        if prefix:
            directory = _walk_down(root, prefix)
        else:
            directory = local_walk.Dir(None if root.fd is None else os.dup(root.fd), root.path)
    except (FileNotFoundError, LinkRefused):
        return
    try:
        target = directory.fd if directory.fd is not None else directory.path
        with os.scandir(target) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(f"{prefix}{entry.name}/")
                elif entry.is_file(follow_symlinks=False):
                    try:
                        modified = entry.stat(follow_symlinks=False).st_mtime
                    except FileNotFoundError:
                        continue  # deleted while we walked
                    key = prefix + entry.name
                    yield ListedObject(key=key, modified_at=datetime.fromtimestamp(modified, UTC))
    finally:
        directory.close()


def _walk_down(root, prefix):
    """Directory ``prefix`` (``"a/b/"``) below ``root``, entered without following a link
    (``root`` stays open: it is the listing's)."""
    directory = None
    for name in prefix.rstrip("/").split("/"):
        parent = directory or root
        try:
            below = local_walk.enter(parent, name, os.path.join(parent.path, name))
        finally:
            if directory is not None:
                directory.close()
        directory = below
    return directory


def free_bytes(root):
    """Bytes a non-root writer can still put on ``root``'s filesystem.

    A missing root (an unmounted volume) raises ``StorageRootMissing``: no answer is
    better than the free space of the disk under the mount point.
    """
    if not os.path.isdir(root):
        raise StorageRootMissing(root)
    return shutil.disk_usage(root).free
