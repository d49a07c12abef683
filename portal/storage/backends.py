"""The storage backend interface (``Backend``, with capability flags the services read
instead of asking which backend it is, as tusd's ``DataStore``), what it takes and returns,
and what a failing backend's errors mean (``StorageUnavailable``)."""

import contextlib
import errno
import hashlib
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.core.files import File
from django.core.files.storage import FileSystemStorage, storages

from portal.storage.local_walk import ROOT_MISSING_REASON, LinkRefused, StorageRootMissing

TEMP_ALIAS = "portal_temp"
FINAL_ALIAS = "portal_final"
READ_CHUNK_BYTES = 1024 * 1024
MISMATCH = "no longer matches the sha256 recorded for it"
MISSING = "is missing from temp storage"


class StorageUnavailable(Exception):
    """The backend failed (unreachable, refusing, full, unmounted): nothing was kept and
    nothing is lost; the same call can succeed once storage is back. ``__cause__`` is the
    backend's own error, for the log; ``str()`` is short and safe to log."""


class StorageFull(StorageUnavailable):
    """The volume (or the user's quota on it) is full: ENOSPC, EDQUOT."""


class StorageLinkRefused(StorageUnavailable):
    """A link under a local storage root that the portal did not make (``local_walk``):
    refused, never followed; an operator must remove it."""


class TooLarge(Exception):
    """The stream carried more bytes than the caller allowed; nothing was kept."""


class RangeBusy(Exception):
    """Another request holds the part's range of its session's file: it is writing the part."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str
    # The MD5 of the bytes, where S3 will later be asked to copy them (``Source.md5``).
    md5: str = ""
    # Where the bytes start in ``key``: None for an object of its own, else the part's
    # offset in its session's file (``local_in_place``), which has nothing of it to delete.
    offset: int | None = None


@dataclass
class DeleteResult:
    """Keys that are gone (including ones that were already missing) and those that failed."""

    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    requests: int = 0


@dataclass(frozen=True)
class ListedObject:
    key: str
    modified_at: datetime


@dataclass(frozen=True)
class Source:
    """A temp object to assemble, with the size and sha256 recorded when it arrived."""

    key: str
    size: int
    sha256: str
    name: str  # how errors name it ("part 3")
    # The MD5 of the bytes on arrival: an S3 copy whose ETag says the same needs no read.
    md5: str = ""
    offset: int | None = None  # as ``StoredObject.offset``


class SourceMismatch(Exception):
    """A source object is gone, or its bytes no longer match the size and sha256 recorded."""

    def __init__(self, source: Source, problem: str):
        super().__init__(f"{source.name} {problem}")
        self.source = source


def temp_storage():
    return storages[TEMP_ALIAS]


def final_storage():
    return storages[FINAL_ALIAS]


def is_local(storage):
    return isinstance(storage, FileSystemStorage)


def new_temp_key(session_id, part_number):
    shard = uuid.uuid4().hex
    return f"{shard[:2]}/{uuid.UUID(str(session_id)).hex}-{part_number:06d}-{shard[2:14]}"


def new_final_key(file_id, *, now=None):
    now = now or datetime.now(UTC)
    return f"{now:%Y/%m/%d}/{uuid.UUID(str(file_id)).hex}"


class HashingReader:
    """A read-only, non-seekable stream that hashes and counts what passes through it
    (``also``: more hashes that see the same bytes).

    Reading more than ``limit`` bytes raises ``TooLarge`` before the excess is returned.
    ``source_error`` keeps what went wrong on the reading side, so ``backend_faults`` can
    tell a failing stream from a failing backend whatever the backend wrapped it in.
    """

    closed = False

    def __init__(self, source, limit=None, also=()):
        self._read = source.read if hasattr(source, "read") else _IterReader(source).read
        self.limit = limit
        self.size = 0
        self.source_error = None
        self._sha = hashlib.sha256()
        self._hashes = [self._sha, *also]

    def read(self, size=-1):
        if size is None or size < 0:
            size = READ_CHUNK_BYTES
        if self.limit is not None:
            size = min(size, self.limit - self.size + 1)
        try:
            data = self._fill(size)
        except BaseException as exc:
            self.source_error = exc
            raise
        if self.limit is not None and self.size + len(data) > self.limit:
            self.source_error = TooLarge(f"more than {self.limit} bytes")
            raise self.source_error
        self.size += len(data)
        for digest in self._hashes:
            digest.update(data)
        return data

    def _fill(self, size):
        """Read until ``size`` bytes or end of stream: a short read must not look like EOF."""
        data = self._read(size)
        if len(data) in (0, size):
            return data
        pieces = [data]
        got = len(data)
        while got < size:
            more = self._read(size - got)
            if not more:
                break
            pieces.append(more)
            got += len(more)
        return b"".join(pieces)

    def hexdigest(self):
        return self._sha.hexdigest()

    def readable(self):
        return True

    def seekable(self):
        return False

    def close(self):
        pass


class _IterReader:
    """Adapts an iterable of byte chunks to ``read(n)``."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self._buffer = memoryview(b"")

    def read(self, size):
        if not self._buffer:
            self._buffer = memoryview(next(self._chunks, b""))
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return bytes(data)


class Backend:
    """Temp and final storage of one kind. Subclasses implement ``write_part``, ``read``,
    ``delete``, ``list`` and ``final_location``; the capabilities are off unless a
    backend has them."""

    # Parts go into one file per session at their offsets (``part_range``), and the final
    # object is a link to that file.
    assembles_in_place = False
    # The storage builds the final object from the parts by itself (``copies_parts``).
    copies_server_side = False
    # The storages are volumes with free space to watch (``free_bytes``).
    has_volumes = False

    @property
    def temp(self):
        return temp_storage()

    @property
    def final(self):
        return final_storage()

    @contextlib.contextmanager
    def part_range(self, session_id, offset, size):
        """The part's range of its session's file, held for the block, or None."""
        yield None

    def copies_parts(self, chunk_size, total_parts):
        """Whether the storage can build the final object from ``total_parts`` parts of
        ``chunk_size`` bytes (the last one shorter) by itself."""
        return False

    def free_bytes(self, storage):
        return None

    def stale_multipart_uploads(self, *, older_than):
        """Incomplete multipart uploads of the final storage: ``(key, upload_id)``."""
        return iter(())

    def abort_multipart_upload(self, upload_id, key):
        """Give up a multipart upload of the final storage (best effort)."""

    def iter_object(self, storage, key, chunk_size):
        with backend_faults(storage):
            yield from self.read(storage, key, chunk_size)

    def hash_part(self, source, digest):
        """Feed ``digest`` a part's bytes, checked against its size and sha256."""
        for chunk in self.checked_chunks(source):
            digest.update(chunk)

    def final_bytes(self, sources):
        """Bytes assembling ``sources`` writes to the final storage."""
        return sum(source.size for source in sources)

    def assemble(self, sources, key, *, progress, **_options):
        """The final object ``key``: the sources' bytes streamed through, each checked."""
        return self.save(self.final, key, HashingReader(self.verified_chunks(sources, progress)))

    def verified_chunks(self, sources, progress):
        assembled = 0
        for source in sources:
            yield from self.checked_chunks(source)
            assembled += source.size
            progress(assembled)

    def checked_chunks(self, source):
        """Yield a source's bytes; ``SourceMismatch`` at the end unless they match its size
        and sha256 (or when it is gone)."""
        digest = hashlib.sha256()
        received = 0
        try:
            for chunk in self.iter_object(self.temp, source.key, READ_CHUNK_BYTES):
                digest.update(chunk)
                received += len(chunk)
                yield chunk
        except FileNotFoundError:
            raise SourceMismatch(source, MISSING) from None
        if received != source.size or digest.hexdigest() != source.sha256:
            raise SourceMismatch(source, MISMATCH)

    def save(self, storage, key, reader: HashingReader) -> StoredObject:
        """Stream ``reader`` into the new object ``key``; nothing is left on failure."""
        try:
            with backend_faults(storage, reader):
                saved = storage.save(key, File(reader, name=key))
        except BaseException:
            with contextlib.suppress(Exception):  # the sweep removes what this cannot
                self.delete(storage, [key])
            raise
        return StoredObject(key=saved, size=reader.size, sha256=reader.hexdigest())


@contextlib.contextmanager
def backend_faults(storage, reader=None):
    """Turn a failing backend's errors into ``StorageUnavailable``.

    A missing object stays ``FileNotFoundError`` (the caller decides what that means),
    except when a local root is gone: that is an outage, not a missing object. Errors of
    the stream being stored (``reader``: ``TooLarge``, a client that disconnects, a part
    that fails its check) pass unchanged, however the backend wrapped them.
    """
    try:
        yield
    except BaseException as exc:
        source_error = reader.source_error if reader is not None else None
        if source_error is not None and exc is not source_error:
            raise source_error from None
        unavailable = None if source_error is not None else _as_unavailable(storage, exc)
        if unavailable is None:
            raise
        raise unavailable from exc


def _as_unavailable(storage, exc):
    """The ``StorageUnavailable`` that ``exc`` means, or None when it is no outage."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, LinkRefused):
        return StorageLinkRefused(f"{exc.filename}: {exc.strerror}")
    if isinstance(exc, StorageRootMissing):
        return StorageUnavailable(f"{exc.filename}: {ROOT_MISSING_REASON}")
    if isinstance(exc, FileNotFoundError):
        if is_local(storage) and not os.path.isdir(storage.location):
            return StorageUnavailable(f"{storage.location}: {ROOT_MISSING_REASON}")
        return None
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(describe(exc))
    if isinstance(exc, OSError | BotoCoreError | ClientError | Boto3Error):
        return StorageUnavailable(describe(exc))
    return None


def describe(exc):
    """A backend error in a few words: its class and the S3 error code or OS reason."""
    reason = error_code(exc) or getattr(exc, "strerror", None) or ""
    return f"{type(exc).__name__}: {reason}".rstrip(": ")


def error_code(exc):
    """The S3 error code of a botocore ``ClientError`` (None for any other error)."""
    return getattr(exc, "response", {}).get("Error", {}).get("Code")
