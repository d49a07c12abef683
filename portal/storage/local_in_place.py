"""Parts written in place on local disk: one assembly file per session, its parts at their
offsets, each range locked by its writer until recorded (docs/design.md).
"""

import contextlib
import ctypes
import errno
import fcntl
import functools
import os
import struct
import tempfile

from portal import locks
from portal.storage import local, local_walk

# struct flock on Linux (x86_64, aarch64): l_type, l_whence, l_start, l_len, l_pid, padding.
_FLOCK = "hhqqi4x"
_BUSY = (errno.EAGAIN, errno.EACCES)
# Created and removed under us this often in a row: something else owns the path.
OPEN_ATTEMPTS = 3
# link(2) refusals that mean "not between these two paths" (two mounts of one filesystem,
# a filesystem without hard links, a link count at its limit): copy instead.
LINK_REFUSED = (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP)
# fallocate(2) modes: deallocate a range without changing the file's size.
_PUNCH_HOLE = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE


@functools.cache
def available():
    """Whether OFD range locks work with the ``_FLOCK`` layout, probed once on a scratch
    file: a lock through one open file must stop the same range through another and leave
    the range beside it free. Where they do not, ``locked_range`` takes a named lock."""
    if not hasattr(fcntl, "F_OFD_SETLK"):
        return False
    try:
        with tempfile.NamedTemporaryFile() as first:
            second = os.open(first.name, os.O_RDWR)
            try:
                return (
                    _try_lock(first.fileno(), 8, 8)
                    and not _try_lock(second, 12, 1)
                    and _try_lock(second, 0, 8)
                )
            finally:
                os.close(second)
    except (OSError, struct.error):
        return False


@functools.cache
def _fallocate():
    """libc's ``fallocate`` (Linux's), or None."""
    function = getattr(ctypes.CDLL(None, use_errno=True), "fallocate", None)
    if function is not None:
        function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    return function


@contextlib.contextmanager
def locked_range(storage, key, offset, size):
    """``(fd, created)`` on the assembly file ``key`` with ``[offset, offset + size)``
    write-locked for the block, or None when another upload holds (part of) that range.
    Without OFD locks: ``portal.locks``' named lock for the range."""
    fd, created = _open(storage, key)
    try:
        with contextlib.ExitStack() as stack:
            if available():
                held = _try_lock(fd, offset, size)
            else:
                try:
                    stack.enter_context(locks.hold(f"range:{key}:{offset}"))
                    held = True
                except locks.LockBusy:
                    held = False
            yield (fd, created) if held else None
    finally:
        os.close(fd)


def _open(storage, key):
    """``(fd, created)``: the file opened for writing, created by this call or not."""
    flags = os.O_RDWR
    with local.key_dir(storage, key, create=True) as (directory, leaf):
        for _attempt in range(OPEN_ATTEMPTS):
            try:
                fd = local_walk.open_file(directory, leaf, flags | os.O_CREAT | os.O_EXCL)
            except FileExistsError:
                try:
                    return local_walk.open_file(directory, leaf, flags), False
                except FileNotFoundError:
                    continue  # removed in between: create it
            try:
                if storage.file_permissions_mode is not None:
                    os.fchmod(fd, storage.file_permissions_mode)
            except BaseException:
                os.close(fd)
                raise
            return fd, True
    raise OSError(errno.ELOOP, "assembly file keeps vanishing", key)


def _try_lock(fd, offset, size):
    """Write-lock the range unless another open file holds part of it (False then)."""
    request = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, offset, max(size, 1), 0)
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, request)
    except OSError as exc:
        if exc.errno in _BUSY:
            return False
        raise
    return True


def release(fd, offset, size):
    """Give the blocks of a range whose bytes were not recorded back to the filesystem (a
    full disk, a client gone), where it can punch holes."""
    if (fallocate := _fallocate()) is not None:
        fallocate(fd, _PUNCH_HOLE, offset, max(size, 1))


def link_final(temp, temp_key, fd, final, final_key):
    """Give ``final_key`` the inode of the assembly file ``temp_key``, open as ``fd`` (a
    final name left by an earlier attempt of the same assembly is kept, anything else
    replaced). ``LinkRefused`` when the file has a name the portal did not give it, or the
    final name is not that file after all; ``OSError`` in ``LINK_REFUSED`` when the two
    cannot share an inode."""
    held = os.fstat(fd)
    final_path = os.path.join(final.location, final_key)
    with (
        local.key_dir(temp, temp_key) as (source, source_leaf),
        local.key_dir(final, final_key, create=True) as (target, leaf),
    ):
        existing = local_walk.leaf_status(target, leaf)
        if existing is None or not os.path.samestat(existing, held):
            local_walk.check_own(fd, os.path.join(temp.location, temp_key))
            if existing is not None:
                local_walk.unlink(target, leaf)
            os.link(
                source_leaf,
                leaf,
                src_dir_fd=source.fd,
                dst_dir_fd=target.fd,
                follow_symlinks=False,
            )
        try:
            local_walk.check_own(fd, final_path, names=2)
            linked = local_walk.leaf_status(target, leaf)
            if linked is None or not os.path.samestat(linked, held):
                raise local_walk.LinkRefused(final_path, "the name is not the assembly file")
        except local_walk.LinkRefused:
            local.unlink_quietly(final, final_key)
            raise
    if final.file_permissions_mode is not None:
        os.fchmod(fd, final.file_permissions_mode)


def same_filesystem(first, second):
    """Whether two local storages' roots share a filesystem."""
    local.ensure_root(first)
    local.ensure_root(second)
    return os.stat(first.location).st_dev == os.stat(second.location).st_dev
