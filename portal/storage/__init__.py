"""The storage adapter the services use, over the django-storages aliases ``portal_temp``
and ``portal_final``.

Bulk delete, listing by age and streaming reads talk to the backend directly; a failing
backend raises ``StorageUnavailable`` whatever it is. A local storage never creates its
own root: a missing root is an unmounted volume, and writing there would fill the disk
under the mount point and hide the outage. Keys are generated here, never by a client.
"""

import contextlib
import hashlib
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime

from django.conf import settings
from django.core.files import File

from portal.parts import part_offset
from portal.storage import local, local_assembly, local_in_place, local_parts, s3, s3_assembly
from portal.storage.backends import (
    FINAL_ALIAS,
    TEMP_ALIAS,
    StorageFull,
    StorageLinkRefused,
    StorageUnavailable,
    backend_faults,
    final_storage,
    iter_object,
    temp_storage,
)
from portal.storage.backends import is_local as _is_local
from portal.storage.local import LocalStorage, StorageRootMissing
from portal.storage.objects import DeleteResult, ListedObject, Source, SourceMismatch, StoredObject
from portal.storage.streams import READ_CHUNK_BYTES, HashingReader, TooLarge

__all__ = [
    "FINAL_ALIAS",
    "TEMP_ALIAS",
    "DeleteResult",
    "HashingReader",
    "ListedObject",
    "LocalStorage",
    "Source",
    "SourceMismatch",
    "StorageFull",
    "StorageLinkRefused",
    "StorageRootMissing",
    "StorageUnavailable",
    "StoredObject",
    "TooLarge",
]


def new_temp_key(session_id, part_number):
    shard = uuid.uuid4().hex
    return f"{shard[:2]}/{uuid.UUID(str(session_id)).hex}-{part_number:06d}-{shard[2:14]}"


def new_final_key(file_id, *, now=None):
    now = now or datetime.now(UTC)
    return f"{now:%Y/%m/%d}/{uuid.UUID(str(file_id)).hex}"


def write_temp_part(
    stream, *, session_id, part_number, max_bytes, file_hash=None, for_copy=False
) -> StoredObject:
    """Stream ``stream`` (``read(n)``, or ``readinto`` on local disk: ``local_parts``) into a
    new temp object, hashing it; at most ``max_bytes`` bytes. ``file_hash`` (the whole file's,
    when this part is the next one it needs) sees the same bytes; on S3 ``for_copy`` takes
    the MD5 a server-side copy needs. On any failure (``TooLarge``, a client gone) the
    partial object is removed before the exception propagates."""
    key = new_temp_key(session_id, part_number)
    storage = temp_storage()
    if _is_local(storage):
        reader = local_parts.BlockReader(stream, max_bytes)
        with backend_faults(storage, reader):
            return local_parts.write_part(storage, key, reader, also=file_hash)
    md5 = hashlib.md5(usedforsecurity=False) if for_copy else None
    hashes = [digest for digest in (file_hash, md5) if digest is not None]
    stored = _save_stream(storage, key, HashingReader(stream, max_bytes, hashes))
    return replace(stored, md5=md5.hexdigest()) if md5 else stored


@contextlib.contextmanager
def part_range(session_id, offset, size):
    """The range of a part in its session's assembly file, held for the block
    (``PartRange``), or None: parts are not written in place here (``assembles_in_place``),
    or another upload of the same part holds the range (``local_in_place``)."""
    if not assembles_in_place():
        yield None
        return
    storage = temp_storage()
    key = local_in_place.assembly_key(session_id)
    with contextlib.ExitStack() as stack:
        with backend_faults(storage):
            held = stack.enter_context(local_in_place.locked_range(storage, key, offset, size))
        yield None if held is None else PartRange(storage, *held, key, offset, size)


class PartRange:
    """A part's range of the assembly file, held by this request until the block ends."""

    def __init__(self, storage, fd, created, key, offset, size):
        self.storage, self.fd, self.key, self.offset, self.size = storage, fd, key, offset, size
        self.created = created  # this request made the file

    def write(self, stream, *, max_bytes, file_hash=None) -> StoredObject:
        """``write_temp_part`` into the range: the same reading, limits and hashing; on
        failure the range gives its blocks back (``release``)."""
        with backend_faults(self.storage):
            local_in_place.check_unshared(self.storage, self.fd, self.key)
        reader = local_parts.BlockReader(stream, max_bytes)
        try:
            with backend_faults(self.storage, reader):
                return local_parts.write_in_place(self.fd, self.key, self.offset, reader, file_hash)
        except BaseException:
            self.release()
            raise

    def release(self):
        """Free the range's blocks: what was written there is not recorded."""
        local_in_place.release(self.fd, self.offset, self.size)

    def copy_to_temp(self, size, *, part_number) -> StoredObject:
        """The range's first ``size`` bytes as a temp object of their own (a tus tail)."""
        reader = local_parts.RangeReader(self.fd, self.offset, size)
        session_id = local_in_place.session_of(self.key)
        return write_temp_part(
            reader, session_id=session_id, part_number=part_number, max_bytes=size
        )

    def abandon(self):
        """The session is closed: a file this request made goes again (nothing can be
        recorded in it), so no object outlives its terminal session."""
        if self.created:
            local.unlink_quietly(self.storage, self.key)


def assembles_in_place():
    """Parts are written into one assembly file per session (``local_in_place``): both
    storages on local disk, ``PORTAL_LOCAL_IN_PLACE_ASSEMBLY`` on, OFD locks available."""
    if not settings.PORTAL_LOCAL_IN_PLACE_ASSEMBLY or not local_in_place.available():
        return False
    return _is_local(temp_storage()) and _is_local(final_storage())


def assembly_session(key):
    """The session whose assembly file ``key`` is (``local_in_place``), else None."""
    return local_in_place.session_of(key)


def part_source(number, size, sha256, temp_key, chunk_size, md5=""):
    """The ``Source`` of part ``number`` as its row records it: its own object, or its
    range of the assembly file."""
    in_place = local_in_place.session_of(temp_key) is not None
    offset = part_offset(number, chunk_size) if in_place else None
    return Source(temp_key, size, sha256, name=f"part {number}", md5=md5, offset=offset)


def hash_part(source, digest):
    """Feed ``digest`` a part's bytes. An object of its own is checked against its size and
    sha256 (``SourceMismatch``); a range of the assembly file is taken as it lies (hashed on
    its way in and never written again, see ``local_in_place``)."""
    if source.offset is None:
        for chunk in checked_chunks(source):
            digest.update(chunk)
        return
    storage = temp_storage()
    with backend_faults(storage):
        local_assembly.hash_in_place(storage, source, digest)


def write_final(chunks: Iterable[bytes], *, file_id, now=None) -> StoredObject:
    """Stream ``chunks`` into a new final object and return its key, size and sha256."""
    key = new_final_key(file_id, now=now)
    return _save_stream(final_storage(), key, HashingReader(chunks))


def final_bytes(sources):
    """Bytes assembling ``sources`` writes to the final storage: 0 for a link, else all."""
    temp, final = temp_storage(), final_storage()
    if _is_local(temp) and _is_local(final):
        with backend_faults(final):
            if local_assembly.linkable(temp, final, sources):
                return 0
    return sum(source.size for source in sources)


def assemble_final(
    sources,
    *,
    file_id,
    now=None,
    progress=None,
    on_upload=None,
    file_hash=None,
    hashed=0,
    room=None,
) -> StoredObject:
    """Concatenate temp objects (``Source``), in order, into the file's final object.

    Each source must still match the size and sha256 recorded for it, else
    ``SourceMismatch`` and no final object is left; ``progress(assembled_bytes)`` is
    called as sources are done. How depends on the backends: both local, a link to the
    session's assembly file when every part was written in place, else a kernel copy
    checked from the page cache (``local_assembly``); both S3 and parts S3 can copy
    (``can_copy_server_side``), UploadPartCopy checked by ETag, the file's sha256
    continuing ``file_hash``, the hash saved while the parts arrived, which covers
    ``sources[:hashed]`` (``s3_assembly``; ``on_upload(upload_id)`` first); otherwise
    the bytes stream from the temp objects into the final one. ``room(size)`` (raising
    when it does not fit) is asked before a link the filesystem refuses turns into a copy.
    """
    sources = list(sources)
    key = new_final_key(file_id, now=now)
    progress = progress or _no_progress
    temp, final = temp_storage(), final_storage()
    if _is_local(temp) and _is_local(final):
        with backend_faults(final):
            if local_assembly.linkable(temp, final, sources):
                linked = local_assembly.link(temp, final, key, sources, progress, file_hash, hashed)
                if linked is not None:
                    return linked
                (room or _no_progress)(sum(source.size for source in sources))
            return local_assembly.assemble(temp, final, key, sources, progress)
    if can_copy_server_side([source.size for source in sources]):
        if file_hash is None:
            file_hash, hashed = hashlib.sha256(), 0
        return s3_assembly.copy_final(
            key,
            sources,
            file_hash=file_hash,
            hashed=hashed,
            checked_chunks=checked_chunks,
            progress=progress,
            on_upload=on_upload,
        )
    return _save_stream(final, key, HashingReader(verified_chunks(sources, progress)))


def _no_progress(assembled_bytes):
    pass


def verified_chunks(sources, progress):
    """Yield every source's bytes in order, checking each against its size and sha256."""
    assembled = 0
    for source in sources:
        yield from checked_chunks(source)
        assembled += source.size
        progress(assembled)


def checked_chunks(source):
    """Yield a source's bytes; ``SourceMismatch`` at the end unless they match its size
    and sha256 (or when it is gone)."""
    digest = hashlib.sha256()
    received = 0
    try:
        for chunk in iter_temp(source.key):
            digest.update(chunk)
            received += len(chunk)
            yield chunk
    except FileNotFoundError:
        raise SourceMismatch(source, local_assembly.MISSING) from None
    if received != source.size or digest.hexdigest() != source.sha256:
        raise SourceMismatch(source, local_assembly.MISMATCH)


def can_copy_server_side(part_sizes):
    """``copies_parts`` for these parts: the smallest but the last is what counts."""
    return copies_parts(min(part_sizes[:-1], default=0), len(part_sizes))


def copies_parts(chunk_size, total_parts):
    """True when S3 can build the final object from ``total_parts`` temp objects, all of
    at least ``chunk_size`` bytes but the last, by itself.

    Both storages on S3, ``PORTAL_S3_COPY_ASSEMBLY`` on, at most 10,000 parts, every part
    but the last at least 5 MiB (S3's multipart rules). Otherwise the parts stream through
    the process: small parts are a client's choice, and refusing them on S3 would break
    the API's part-size contract (PORTAL_CHUNK_SIZE_MIN) for one backend.
    """
    if not copies_server_side() or total_parts > s3.MAX_COPY_PARTS:
        return False
    return total_parts == 1 or chunk_size >= s3.MIN_COPY_PART


def copies_server_side():
    """Both storages on S3 and ``PORTAL_S3_COPY_ASSEMBLY`` on."""
    if _is_local(temp_storage()) or _is_local(final_storage()):
        return False
    return bool(settings.PORTAL_S3_COPY_ASSEMBLY)


def abort_multipart_upload(upload_id, key):
    """Give up a multipart upload of the final storage (best effort: cleanup retries)."""
    s3_assembly.abort(upload_id, key)


def stale_multipart_uploads(*, older_than):
    """Incomplete multipart uploads of the final storage started before ``older_than``:
    ``(key, upload_id)``, the key relative to the storage. None on local storage."""
    final = final_storage()
    if _is_local(final):
        return
    prefix = s3.full_key(final, "")
    with backend_faults(final):
        for full, upload_id, initiated in s3.list_multipart_uploads(
            final.connection.meta.client, final.bucket_name, prefix
        ):
            if initiated < older_than:
                yield full[len(prefix) :], upload_id


def iter_temp(key, chunk_size=READ_CHUNK_BYTES) -> Iterator[bytes]:
    """Yield a temp object's bytes in chunks; ``FileNotFoundError`` if it is gone."""
    return iter_object(temp_storage(), key, chunk_size)


def delete_temp(keys: Iterable[str]) -> DeleteResult:
    """Delete many temp objects; a missing object counts as deleted."""
    return _delete_many(temp_storage(), keys)


def delete_final(keys: Iterable[str]) -> DeleteResult:
    """Delete many final objects; a missing object counts as deleted."""
    return _delete_many(final_storage(), keys)


def list_temp(*, older_than: datetime | None = None) -> Iterator[ListedObject]:
    """Yield temp objects (modified before ``older_than`` when given), streaming."""
    return list_objects(temp_storage(), older_than=older_than)


def list_objects(storage, *, older_than: datetime | None = None) -> Iterator[ListedObject]:
    """Yield ``storage``'s objects, streaming; a missing local root is an outage."""
    listing = local.list_local(storage) if _is_local(storage) else s3.list_s3(storage)
    for item in listing:
        if older_than is None or item.modified_at < older_than:
            yield item


def final_location(key):
    """Where a final object is, for a reader outside the portal (the runner).

    S3: the bucket and the object's full key in it (the storage's ``final/`` prefix
    included). Local disk: the absolute path, and the key relative to the final root.
    """
    storage = final_storage()
    if _is_local(storage):
        path = local.local_path(storage.location, key)
        return {"backend": "local", "bucket": "", "key": key, "path": path}
    return {"backend": "s3", "bucket": storage.bucket_name, "key": s3.full_key(storage, key)}


def free_bytes(name):
    """Free bytes of the ``temp`` or ``final`` volume; ``None`` on S3 (there is no volume).

    ``StorageUnavailable`` when the volume cannot be looked at (a missing root).
    """
    storage = temp_storage() if name == "temp" else final_storage()
    if not _is_local(storage):
        return None
    with backend_faults(storage):
        return local.free_bytes(storage.location)


def _save_stream(storage, key, reader: HashingReader) -> StoredObject:
    try:
        with backend_faults(storage, reader):
            saved = storage.save(key, File(reader, name=key))
    except BaseException:
        with contextlib.suppress(Exception):  # the sweep removes what this cannot
            _delete_many(storage, [key])
        raise
    return StoredObject(key=saved, size=reader.size, sha256=reader.hexdigest())


def _delete_many(storage, keys):
    keys = list(dict.fromkeys(keys))
    if _is_local(storage):
        return local.delete_local(storage, keys)
    return s3.delete_s3(storage, keys)
