"""Assembling parts on local disk: copied in the kernel, checked from the page cache.

Three steps per part, each in its own thread so that they overlap on two cores: a copier
puts part ``i`` into place with ``copy_file_range`` (no byte through Python; through a
buffer only where the kernel refuses, e.g. across filesystems); a checker hashes that
range of the final file and compares it with the sha256 recorded for the part; the caller
hashes the same range into the file's digest and reports progress. Both hashes read the
final file through short-lived ``mmap`` windows, so what is checked is exactly what is
stored, without a copy into this process. The first mismatch cancels what is queued.

The caller holds the session's lock (one assembler per session), so nothing else
truncates the final file under a mapping. Figures: docs/upload-performance.md.
"""

import errno
import hashlib
import itertools
import mmap
import os
import stat
from concurrent.futures import ThreadPoolExecutor

from portal.storage import local
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
    path = local.local_path(final.location, key)
    offsets = list(itertools.accumulate((source.size for source in sources), initial=0))
    with local.created_file(final, path, truncate=True) as fd:
        digest = _Assembly(temp.location, fd, sources, offsets).run(progress)
    return StoredObject(key=key, size=offsets[-1], sha256=digest)


class _Assembly:
    def __init__(self, temp_root, fd, sources, offsets):
        self.temp_root, self.fd, self.sources, self.offsets = temp_root, fd, sources, offsets

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
        path = local.local_path(self.temp_root, source.key)
        try:
            src = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            if not os.path.isdir(self.temp_root):
                raise local.StorageRootMissing(self.temp_root) from None
            raise SourceMismatch(source, MISSING) from None
        try:
            status = os.fstat(src)
            if not stat.S_ISREG(status.st_mode):  # a broken volume, not a changed part
                raise OSError(errno.EISDIR, "not a regular file", path)
            if status.st_size != source.size:
                raise SourceMismatch(source, MISMATCH)
            if copy_range(src, self.fd, source.size, self.offsets[i]) != source.size:
                raise SourceMismatch(source, MISMATCH)  # shrank while it was copied
        finally:
            os.close(src)

    def _check(self, i, copy):
        copy.result()
        source = self.sources[i]
        digest = hash_range(hashlib.sha256(), self.fd, self.offsets[i], source.size)
        if digest.hexdigest() != source.sha256:
            raise SourceMismatch(source, MISMATCH)


def copy_range(src, dst, size, offset):
    """Copy up to ``size`` bytes from the start of ``src`` to ``dst`` at ``offset``, in the
    kernel where it can; returns the count (short when the source ended early)."""
    done = 0
    copy = os.copy_file_range
    while done < size:
        try:
            copied = copy(src, dst, size - done, done, offset + done)
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
            mmap.mmap(fd, length, prot=mmap.PROT_READ, offset=start) as window,
            memoryview(window) as view,
            view[offset - start :] as piece,
        ):
            digest.update(piece)
        offset = start + length
    return digest
