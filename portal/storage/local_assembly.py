"""Assembling parts on local disk: the session's assembly file linked, else (another
filesystem, a refused link) copied in the kernel. The file's hash and each part's check (in
a second thread) read the final file through ``mmap`` windows, so what is checked is what
is stored; the caller holds the session's lock, so nothing truncates it under a mapping.
"""

import contextlib
import dataclasses
import errno
import hashlib
import itertools
import mmap
import os
import stat
from concurrent.futures import ThreadPoolExecutor

from portal.storage import (
    MISMATCH,
    MISSING,
    SourceMismatch,
    StoredObject,
    assembly_key,
    local,
    local_in_place,
    local_walk,
    streams,
)

# Hash the final object through mappings of at most this many bytes at a time.
HASH_WINDOW_BYTES = 8 * 1024 * 1024
COPY_BUFFER_BYTES = 1024 * 1024
# copy_file_range refusals that mean "not between these files": copy through a buffer.
KERNEL_COPY_REFUSED = (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL)


def assemble(temp, final, key, sources, progress, file_hash=None, hashed=0, room=None):
    """The final object ``key`` from ``sources`` (see ``storage.assemble_final``): the
    file must be exactly as long as its parts and each part must match its sha256, else
    ``SourceMismatch`` and no final object. ``room(size)`` is asked before a copy."""
    offsets = list(itertools.accumulate((source.size for source in sources), initial=0))
    with _opened(temp, sources[0]) as fd:
        size = os.fstat(fd).st_size
        if size != offsets[-1]:
            broken = next((s for s in sources if not _holds(size, s)), sources[-1])
            raise SourceMismatch(broken, MISMATCH)
        if _link(temp, fd, final, key, sources[0]):
            try:
                digest = _hash_the_rest(fd, sources, offsets, progress, file_hash, hashed)
            except BaseException:
                local.unlink_quietly(final, key)
                raise
            return StoredObject(key=key, size=size, sha256=digest)
        if room is not None:
            room(size)
        with local.created_file(final, key, replace=True) as copy:
            if copy_range(fd, copy, size, 0) != size:
                raise SourceMismatch(sources[-1], MISMATCH)  # shrank while it was copied
            digest = _hash_the_rest(copy, sources, offsets, progress, None, 0)
        return StoredObject(key=key, size=size, sha256=digest)


def into_place(temp, session_id, sources):
    """``sources``, those kept in a file of their own first copied into their range of the
    session's file and checked: the code before one file per session records such parts
    while ``migrate`` runs (migration 0008 moves only those recorded before it)."""
    if all(source.offset is not None for source in sources):
        return sources
    key = assembly_key(session_id)
    placed = []
    for source in sources:
        offset = sum(done.size for done in placed)
        placed.append(source if source.offset is not None else _copy_in(temp, key, offset, source))
    return placed


def _copy_in(temp, key, offset, source):
    with (
        _opened(temp, source) as own,
        local_in_place.locked_range(temp, key, offset, source.size) as held,
    ):
        if held is None:
            raise OSError(errno.EBUSY, "a request holds the part's range", key)
        placed = dataclasses.replace(source, key=key, offset=offset)
        if copy_range(own, held[0], source.size, offset) != source.size:
            raise SourceMismatch(source, MISMATCH)
        check_range(held[0], offset, placed)
    return placed


def _link(temp, fd, final, key, source):
    """Whether ``key`` became a second name of the assembly file ``fd`` (not when the two
    roots cannot share an inode, e.g. two mounts of one filesystem)."""
    if not local_in_place.same_filesystem(temp, final):
        return False
    try:
        local_in_place.link_final(temp, source.key, fd, final, key)
    except OSError as exc:
        if exc.errno in local_in_place.LINK_REFUSED:
            return False
        raise
    return True


def _hash_the_rest(fd, sources, offsets, progress, file_hash, hashed):
    """``file_hash`` (or a new one) continued over the sources it does not cover, each
    checked against its own sha256 meanwhile; the hex digest."""
    digest, start = (hashlib.sha256(), 0) if file_hash is None else (file_hash, hashed)
    with ThreadPoolExecutor(1, thread_name_prefix="portal-assemble-check") as checker:
        for i in range(start, len(sources)):
            check = checker.submit(check_range, fd, offsets[i], sources[i])
            hash_range(digest, fd, offsets[i], sources[i].size)
            check.result()
            progress(offsets[i + 1])
    return digest.hexdigest()


def check_range(fd, offset, source):
    """``SourceMismatch`` unless ``fd`` holds ``source``'s bytes at ``offset``; a part
    written in place with no sha256 of its own is taken as it lies."""
    if not source.sha256 and source.offset is not None:
        return
    if hash_range(hashlib.sha256(), fd, offset, source.size).hexdigest() != source.sha256:
        raise SourceMismatch(source, MISMATCH)


def hash_in_place(temp, source, digest):
    """Feed ``digest`` a part's range of its assembly file, as it lies."""
    with _opened(temp, source) as fd:
        if not _holds(os.fstat(fd).st_size, source):
            raise SourceMismatch(source, MISMATCH)
        hash_range(digest, fd, source.offset, source.size)


@contextlib.contextmanager
def _opened(temp, source):
    """A read-only fd on a source's temp file: ``SourceMismatch`` when it is gone,
    ``OSError`` when it is no file (a broken volume, not a changed part)."""
    try:
        with local.key_dir(temp, source.key) as (directory, leaf):
            fd = local_walk.open_file(directory, leaf, os.O_RDONLY)
    except local.StorageRootMissing:
        raise
    except FileNotFoundError:
        raise SourceMismatch(source, MISSING) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EISDIR, "not a regular file", source.key)
        yield fd
    finally:
        os.close(fd)


def _holds(file_size, source):
    return file_size >= source.offset + source.size


def copy_range(src, dst, size, offset, src_offset=0):
    """Copy up to ``size`` bytes of ``src`` from ``src_offset`` to ``dst`` at ``offset``,
    in the kernel where it can; the count (short when the source ended early)."""
    done = 0
    copy = getattr(os, "copy_file_range", _copy_through_buffer)
    while done < size:
        try:
            copied = copy(src, dst, size - done, src_offset + done, offset + done)
        except OSError as exc:
            if copy is _copy_through_buffer or exc.errno not in KERNEL_COPY_REFUSED:
                raise
            copy = _copy_through_buffer
            continue
        if copied == 0:
            break
        done += copied
    return done


def _copy_through_buffer(src, dst, size, src_offset, dst_offset):
    data = os.pread(src, min(size, COPY_BUFFER_BYTES), src_offset)
    streams.pwrite_all(dst, data, dst_offset)
    return len(data)


# A private mapping, never written: writable for ctypes (``ResumableSha256`` takes the
# buffer without a copy), yet only read access to the file is needed.
_READ_WRITE_PRIVATE = mmap.PROT_READ | mmap.PROT_WRITE


def hash_range(digest, fd, offset, size):
    """Update ``digest`` with ``size`` bytes of ``fd`` from ``offset``, read from the page
    cache through short-lived mappings."""
    end = offset + size
    if os.fstat(fd).st_size < end:  # a mapping past the end would fault (SIGBUS)
        raise OSError(errno.EIO, "final object is shorter than its parts")
    while offset < end:
        start = offset - offset % mmap.ALLOCATIONGRANULARITY
        length = min(end - start, HASH_WINDOW_BYTES)
        with (
            mmap.mmap(fd, length, mmap.MAP_PRIVATE, _READ_WRITE_PRIVATE, offset=start) as window,
            memoryview(window) as view,
            view[offset - start :] as piece,
        ):
            digest.update(piece)
        offset = start + length
    return digest
