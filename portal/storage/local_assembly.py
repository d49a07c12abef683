"""Assembling parts on local disk: a link when they were written in place, else copied in
the kernel and checked from the page cache.

The copy (``copy_file_range``), the parts' check and the file's hash run in three threads
that overlap on two cores; both hashes read the final file through ``mmap`` windows, so
what is checked is exactly what is stored. The caller holds the session's lock, so
nothing truncates the file under a mapping.
"""

import errno
import hashlib
import itertools
import mmap
import os
import stat
from concurrent.futures import ThreadPoolExecutor

from portal.storage import local, local_in_place, local_walk
from portal.storage.objects import SourceMismatch, StoredObject

# Hash the final object through mappings of at most this many bytes at a time.
HASH_WINDOW_BYTES = 8 * 1024 * 1024
COPY_BUFFER_BYTES = 1024 * 1024
MISMATCH = "no longer matches the sha256 recorded for it"
MISSING = "is missing from temp storage"
# copy_file_range refusals that mean "not between these files": copy through a buffer.
KERNEL_COPY_REFUSED = (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL)


def assemble(temp, final, key, sources, progress) -> StoredObject:
    """Concatenate ``sources`` (temp objects) into the final object ``key``, checking each.

    ``progress(assembled_bytes)`` after each source. ``SourceMismatch`` (and no final
    object) when a source is gone or changed; ``StorageRootMissing`` when a root is.
    """
    local.ensure_root(temp)
    offsets = list(itertools.accumulate((source.size for source in sources), initial=0))
    with local.created_file(final, key, replace=True) as fd:
        digest = _Assembly(temp, fd, sources, offsets).run(progress)
    return StoredObject(key=key, size=offsets[-1], sha256=digest)


def linkable(temp, final, sources):
    """Every source in place in one assembly file, which the final root can link to."""
    keys = {source.key for source in sources}
    if len(keys) != 1 or any(source.offset is None for source in sources):
        return False
    return local_in_place.same_filesystem(temp, final)


def link(temp, final, key, sources, progress, file_hash=None, hashed=0):
    """The final object ``key`` as a second name of the session's assembly file, which
    holds every source in place (``local_in_place``); None when the two roots cannot
    share an inode (``LINK_REFUSED``, e.g. two mounts of one filesystem): copy then.

    The bytes of a part written in place were hashed on their way into that range and the
    range was never written again, so the parts the saved file hash covers (``file_hash``,
    ``sources[:hashed]``) are not read; the file must be there and exactly as long as its
    parts. The others are read once, for the file's hash and, in a second thread, their
    own check (``SourceMismatch``, and the final name goes again).
    """
    offsets = list(itertools.accumulate((source.size for source in sources), initial=0))
    fd = _open_source(temp, sources[0])
    try:
        size = os.fstat(fd).st_size
        if size != offsets[-1]:
            broken = next((s for s in sources if not _holds(size, s)), sources[-1])
            raise SourceMismatch(broken, MISMATCH)
        try:
            local_in_place.link_final(temp, sources[0].key, fd, final, key)
        except OSError as exc:
            if exc.errno in local_in_place.LINK_REFUSED:
                return None
            raise
        try:
            digest = _hash_the_rest(fd, sources, offsets, progress, file_hash, hashed)
        except BaseException:
            local.unlink_quietly(final, key)
            raise
    finally:
        os.close(fd)
    return StoredObject(key=key, size=offsets[-1], sha256=digest)


def _hash_the_rest(fd, sources, offsets, progress, file_hash, hashed):
    """``file_hash`` (or a new one) continued over the sources it does not cover, each of
    them checked against its own sha256 at the same time; the hex digest."""
    digest, start = (hashlib.sha256(), 0) if file_hash is None else (file_hash, hashed)
    with ThreadPoolExecutor(1, thread_name_prefix="portal-assemble-check") as checker:
        for i in range(start, len(sources)):
            check = checker.submit(check_range, fd, offsets[i], sources[i])
            hash_range(digest, fd, offsets[i], sources[i].size)
            check.result()
            progress(offsets[i + 1])
    return digest.hexdigest()


def check_range(fd, offset, source):
    """``SourceMismatch`` unless ``fd`` holds ``source``'s bytes at ``offset``."""
    if hash_range(hashlib.sha256(), fd, offset, source.size).hexdigest() != source.sha256:
        raise SourceMismatch(source, MISMATCH)


def hash_in_place(temp, source, digest):
    """Feed ``digest`` a part's range of its assembly file, as it lies (see ``link``)."""
    fd = _open_source(temp, source)
    try:
        if not _holds(os.fstat(fd).st_size, source):
            raise SourceMismatch(source, MISMATCH)
        hash_range(digest, fd, source.offset, source.size)
    finally:
        os.close(fd)


def _open_source(temp, source):
    """A read-only fd on a source's temp file, reached without following a link
    (``LinkRefused``); ``SourceMismatch`` when it is gone, ``StorageRootMissing`` when the
    whole root is, ``OSError`` when it is no file (a broken volume, not a changed part)."""
    try:
        with local.key_dir(temp, source.key) as (directory, leaf):
            fd = local_walk.open_file(directory, leaf, os.O_RDONLY)
    except local.StorageRootMissing:
        raise
    except FileNotFoundError:
        raise SourceMismatch(source, MISSING) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EISDIR, "not a regular file", source.key)
    return fd


class _Assembly:
    def __init__(self, temp, fd, sources, offsets):
        self.temp, self.fd, self.sources, self.offsets = temp, fd, sources, offsets

    def run(self, progress):
        digest = hashlib.sha256()
        copier = ThreadPoolExecutor(1, thread_name_prefix="portal-assemble-copy")
        checker = ThreadPoolExecutor(1, thread_name_prefix="portal-assemble-check")
        try:
            copies = [copier.submit(self._copy, i) for i in range(len(self.sources))]
            checks = [checker.submit(self._check, i, copy) for i, copy in enumerate(copies)]
            for i, (copy, check) in enumerate(zip(copies, checks, strict=True)):
                copy.result()
                hash_range(digest, self.fd, self.offsets[i], self.sources[i].size)
                check.result()
                progress(self.offsets[i + 1])
        finally:
            copier.shutdown(cancel_futures=True)
            checker.shutdown(cancel_futures=True)
        return digest.hexdigest()

    def _copy(self, i):
        source = self.sources[i]
        src = _open_source(self.temp, source)
        try:
            status = os.fstat(src)
            start = source.offset or 0
            if not _holds(status.st_size, source):
                raise SourceMismatch(source, MISMATCH)
            if copy_range(src, self.fd, source.size, self.offsets[i], start) != source.size:
                raise SourceMismatch(source, MISMATCH)  # shrank while it was copied
        finally:
            os.close(src)

    def _check(self, i, copy):
        copy.result()
        check_range(self.fd, self.offsets[i], self.sources[i])


def _holds(file_size, source):
    """Whether a temp file of ``file_size`` bytes can hold ``source``: exactly its size for
    an object of its own, at least its range for a part in an assembly file."""
    if source.offset is None:
        return file_size == source.size
    return file_size >= source.offset + source.size


def copy_range(src, dst, size, offset, src_offset=0):
    """Copy up to ``size`` bytes of ``src`` from ``src_offset`` to ``dst`` at ``offset``,
    in the kernel where it can; returns the count (short when the source ended early)."""
    done = 0
    copy = os.copy_file_range
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
    buffer = memoryview(bytearray(min(size, COPY_BUFFER_BYTES)))
    got = os.preadv(src, [buffer], src_offset)
    written = 0
    while written < got:
        written += os.pwrite(dst, buffer[written:got], dst_offset + written)
    return got


# A private mapping, never written: writable for ctypes (``ResumableSha256`` takes the
# buffer without a copy), yet only read access to the file is needed.
_READ_WRITE_PRIVATE = mmap.PROT_READ | mmap.PROT_WRITE


def hash_range(digest, fd, offset, size):
    """Update ``digest`` with ``size`` bytes of ``fd`` from ``offset``, read in place from
    the page cache through short-lived mappings."""
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
