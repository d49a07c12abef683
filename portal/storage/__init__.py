"""The storage adapter the services use, over the django-storages aliases ``portal_temp``
and ``portal_final``: one ``Backend`` (local disk or S3) chosen from the settings, whose
capability flags the services read instead of asking which backend it is (as tusd's
``DataStore``); any backend's failure is ``StorageUnavailable``. Keys are generated here,
never by a client. Design: docs/design.md.
"""

import contextlib
import errno
import hashlib
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.core.files import File
from django.core.files.storage import FileSystemStorage, storages
from django.core.signals import setting_changed
from django.dispatch import receiver

from portal.storage.local_walk import ROOT_MISSING_REASON, LinkRefused, StorageRootMissing
from portal.storage.streams import READ_CHUNK_BYTES, HashingReader, TooLarge

__all__ = ["READ_CHUNK_BYTES", "TooLarge"]

TEMP_ALIAS = "portal_temp"
FINAL_ALIAS = "portal_final"
ASSEMBLY_SUFFIX = "-parts"
MISMATCH = "no longer matches the sha256 recorded for it"
MISSING = "is missing from temp storage"


class StorageUnavailable(Exception):
    """The backend failed (unreachable, refusing, full, unmounted): nothing was kept, the
    same call can succeed once storage is back. ``str()`` is short and safe to log."""


class StorageFull(StorageUnavailable):
    """The volume (or the user's quota on it) is full: ENOSPC, EDQUOT."""


class StorageLinkRefused(StorageUnavailable):
    """A link under a local storage root that the portal did not make: never followed; an
    operator must remove it."""


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


def new_temp_key(session_id, part_number):
    shard = uuid.uuid4().hex
    return f"{shard[:2]}/{uuid.UUID(str(session_id)).hex}-{part_number:06d}-{shard[2:14]}"


def new_final_key(file_id, *, now=None):
    now = now or datetime.now(UTC)
    return f"{now:%Y/%m/%d}/{uuid.UUID(str(file_id)).hex}"


class Backend:
    """Temp and final storage of one kind: subclasses implement ``write_part``, ``read``,
    ``delete``, ``list`` and ``final_location``, and turn on the capabilities they have."""

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
    """Turn a failing backend's errors into ``StorageUnavailable``. A missing object stays
    ``FileNotFoundError``, unless a local root is gone (an outage). Errors of the stream
    being stored (``reader``) pass unchanged, however the backend wrapped them."""
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
        if isinstance(storage, FileSystemStorage) and not os.path.isdir(storage.location):
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


_CHOSEN: list[Backend] = []


def backend() -> Backend:
    """The backend the settings choose, made at first use and kept."""
    if not _CHOSEN:
        if isinstance(temp_storage(), FileSystemStorage):
            from portal.storage.local_backend import LocalBackend as chosen
        else:
            from portal.storage.s3_backend import S3Backend as chosen
        _CHOSEN.append(chosen())
    return _CHOSEN[0]


@receiver(setting_changed)
def _settings_changed(**_kwargs):
    """A test changed the settings: choose again at next use."""
    _CHOSEN.clear()


def write_temp_part(
    stream, *, session_id, part_number, max_bytes, file_hash=None, for_copy=False
) -> StoredObject:
    """Stream ``stream`` into a new temp object, hashing it (``file_hash`` too), at most
    ``max_bytes`` bytes (else ``TooLarge``); nothing is left on failure. ``for_copy``
    takes what a server-side copy needs."""
    key = new_temp_key(session_id, part_number)
    return backend().write_part(key, stream, max_bytes, file_hash=file_hash, for_copy=for_copy)


def hash_only(stream, *, max_bytes) -> StoredObject:
    """The size and sha256 of ``stream`` (a replay of a recorded part), storing nothing."""
    reader = HashingReader(stream, max_bytes)
    while reader.read(READ_CHUNK_BYTES):
        pass
    return StoredObject(key="", size=reader.size, sha256=reader.hexdigest())


def assembly_key(session_id):
    """The key of a session's assembly file on local disk (``local_in_place``)."""
    hexid = uuid.UUID(str(session_id)).hex
    return f"{hexid[:2]}/{hexid}{ASSEMBLY_SUFFIX}"


def assembly_session(key):
    """The session whose assembly file ``key`` is, else None (any other temp key)."""
    name = key.rpartition("/")[2]
    if not name.endswith(ASSEMBLY_SUFFIX):
        return None
    try:
        return uuid.UUID(name[: -len(ASSEMBLY_SUFFIX)])
    except ValueError:
        return None


def part_source(number, size, sha256, temp_key, offset, md5=""):
    """The ``Source`` of part ``number`` as its row records it."""
    return Source(temp_key, size, sha256, name=f"part {number}", md5=md5, offset=offset)


def write_final(chunks: Iterable[bytes], *, file_id, now=None) -> StoredObject:
    chosen = backend()
    return chosen.save(chosen.final, new_final_key(file_id, now=now), HashingReader(chunks))


def assemble_final(sources, *, file_id, now=None, progress=None, **options) -> StoredObject:
    """Concatenate temp objects (``Source``), in order, into the file's final object;
    ``SourceMismatch`` and no final object unless each still matches its size and sha256.
    ``options``: ``file_hash`` (covering ``sources[:hashed]``), ``hashed``,
    ``on_upload(upload_id)`` (S3), ``room(size)`` (local, before a refused link turns into
    a copy), ``session_id`` (local: the file a part kept on its own is copied into)."""
    key = new_final_key(file_id, now=now)
    return backend().assemble(
        list(sources), key, progress=progress or (lambda _done: None), **options
    )


def iter_temp(key, chunk_size=READ_CHUNK_BYTES) -> Iterator[bytes]:
    """Yield a temp object's bytes in chunks; ``FileNotFoundError`` if it is gone."""
    return backend().iter_object(temp_storage(), key, chunk_size)


def delete_temp(keys: Iterable[str]) -> DeleteResult:
    """Delete many temp objects; a missing object counts as deleted."""
    return backend().delete(temp_storage(), list(dict.fromkeys(keys)))


def delete_final(keys: Iterable[str]) -> DeleteResult:
    return backend().delete(final_storage(), list(dict.fromkeys(keys)))


def list_temp(*, older_than: datetime | None = None) -> Iterator[ListedObject]:
    """Yield temp objects (modified before ``older_than`` when given), streaming."""
    return list_objects(temp_storage(), older_than=older_than)


def list_objects(storage, *, older_than: datetime | None = None) -> Iterator[ListedObject]:
    for item in backend().list(storage):
        if older_than is None or item.modified_at < older_than:
            yield item


def free_bytes(name):
    """Free bytes of the ``temp`` or ``final`` volume, None on S3; ``StorageUnavailable``
    when the volume cannot be looked at (a missing root)."""
    return backend().free_bytes(temp_storage() if name == "temp" else final_storage())
