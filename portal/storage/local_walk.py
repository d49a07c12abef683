"""Paths under a local storage root, reached without following a link below the root
(docs/design.md): each directory opened by ``O_NOFOLLOW | O_DIRECTORY`` relative to its
parent.
"""

import contextlib
import errno
import os
import stat

ROOT_MISSING_REASON = "storage root is missing (volume not mounted?)"
# What opening a symlink with O_NOFOLLOW answers: ELOOP (Linux), EMLINK (FreeBSD),
# ENOTDIR (with O_DIRECTORY, some systems); an lstat then tells a link from the rest.
_LINK_ERRNOS = frozenset((errno.ELOOP, errno.EMLINK, errno.ENOTDIR))
# Made and removed under us this often in a row: something else owns the name.
MKDIR_ATTEMPTS = 3


class StorageRootMissing(FileNotFoundError):
    """The local storage's root directory is gone: an outage, never "nothing stored"."""

    def __init__(self, location):
        super().__init__(errno.ENOENT, ROOT_MISSING_REASON, location)


class LinkRefused(OSError):
    """A symlink below the root, or a file with another name or owner: never followed,
    written or deleted through."""

    def __init__(self, path, problem="is a symlink"):
        super().__init__(errno.ELOOP, f"refusing a link under a storage root: {problem}", path)


class Dir:
    """A directory under a storage root: ``fd`` and ``path`` (for messages)."""

    __slots__ = ("fd", "path")

    def __init__(self, fd, path):
        self.fd, self.path = fd, path

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def open_root(root):
    """The root directory (followed: the operator chose it); ``StorageRootMissing``."""
    try:
        return Dir(os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), root)
    except FileNotFoundError:
        raise StorageRootMissing(root) from None


@contextlib.contextmanager
def parent_of(root, key, *, create=False, mode=None):
    """``(Dir, leaf)``: the directory holding ``key`` under ``root``; missing directories
    made (with ``mode``, as ``FileSystemStorage`` makes them) when ``create``, else
    ``FileNotFoundError``."""
    *names, leaf = key.split("/")
    directory = open_root(root)
    try:
        for name in names:
            below = _open_dir(directory, name, create, mode)
            directory.close()
            directory = below
        yield directory, leaf
    finally:
        directory.close()


def _open_dir(parent, name, create, mode):
    path = os.path.join(parent.path, name)
    for _attempt in range(MKDIR_ATTEMPTS):
        try:
            return enter(parent, name, path)
        except FileNotFoundError:
            if not create:
                raise
        try:
            os.mkdir(name, 0o777 if mode is None else mode, dir_fd=parent.fd)
        except FileExistsError:
            continue  # made meanwhile by another request: enter it
        made = enter(parent, name, path)
        if mode is not None:
            os.chmod(made.fd, mode)
        return made
    raise OSError(errno.ELOOP, "directory keeps vanishing", path)


def enter(parent, name, path):
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return Dir(os.open(name, flags, dir_fd=parent.fd), path)
    except OSError as exc:
        if exc.errno in _LINK_ERRNOS:
            refuse_link(parent, name)
        raise


def refuse_link(directory, leaf):
    """``LinkRefused`` when ``leaf`` in ``directory`` is a symlink (missing is fine)."""
    status = leaf_status(directory, leaf)
    if status is not None and stat.S_ISLNK(status.st_mode):
        raise LinkRefused(os.path.join(directory.path, leaf))


def open_file(directory, leaf, flags, mode=0o666):
    """``os.open`` of ``leaf`` in ``directory``, never through a symlink (``LinkRefused``)."""
    flags |= os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(leaf, flags, mode, dir_fd=directory.fd)
    except OSError as exc:
        if exc.errno in _LINK_ERRNOS:
            refuse_link(directory, leaf)
        raise


def leaf_status(directory, leaf):
    """The ``lstat`` of ``leaf`` in ``directory``, or None when there is none."""
    try:
        return os.stat(leaf, dir_fd=directory.fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def check_own(fd, path, *, names=1):
    """``LinkRefused`` unless ``fd``'s file has exactly the ``names`` the portal gave it
    and belongs to this process's user: bytes in a file somebody else holds a name of (a
    planted hard link) could be changed after their sha256 was recorded."""
    status = os.fstat(fd)
    if status.st_nlink != names:
        raise LinkRefused(path, f"the file has {status.st_nlink} names, expected {names}")
    geteuid = getattr(os, "geteuid", None)
    if geteuid is not None and status.st_uid != geteuid():
        raise LinkRefused(path, f"the file belongs to uid {status.st_uid}, not {geteuid()}")
    return status


def unlink(directory, leaf):
    """Remove ``leaf`` from ``directory`` (a symlink itself, never what it points to)."""
    os.unlink(leaf, dir_fd=directory.fd)
