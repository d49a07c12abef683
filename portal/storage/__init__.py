"""The storage adapter the services use, over the django-storages aliases.

``portal_temp`` holds received parts, ``portal_final`` the assembled files (see
``boot.settings``). Writes go through ``Storage.save`` so either backend works; the
operations Django's Storage API has no efficient form of (bulk delete, listing by age,
streaming reads) talk to the backend directly: ``os`` for local disk (``local``), the
boto3 client of S3Storage for S3 (``s3``: DeleteObjects with up to 1,000 keys, paginated
listings). A failing backend raises ``StorageUnavailable`` whatever it is.

A local storage never creates its own root directory (``LocalStorage``): a missing root is
an unmounted volume, and writing there would fill the disk under the mount point and hide
the outage (readiness would pass, cleanup would take every tracked object for deleted).
The roots are created once at install; in ``Dev`` the settings create them.

Keys are generated here, never taken from a client. Temp keys sit in 256 fixed shard
directories (``ab/<session>-<part>-<random>``), so deleting parts never leaves empty
per-session directories behind. Nothing here reads a whole part or file into memory.
"""

import contextlib
import errno
import os
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from django.core.files import File
from django.core.files.storage import FileSystemStorage, storages

from portal.storage import local, s3
from portal.storage.local import ROOT_MISSING_REASON, LocalStorage, StorageRootMissing
from portal.storage.objects import DeleteResult, ListedObject, StoredObject
from portal.storage.streams import READ_CHUNK_BYTES, HashingReader, TooLarge

TEMP_ALIAS = "portal_temp"
FINAL_ALIAS = "portal_final"

__all__ = [
    "DeleteResult",
    "HashingReader",
    "ListedObject",
    "LocalStorage",
    "StorageRootMissing",
    "StorageUnavailable",
    "StoredObject",
    "TooLarge",
]


class StorageUnavailable(Exception):
    """The backend failed (unreachable, refusing, full, unmounted): nothing was kept and
    nothing is lost; the same call can succeed once storage is back. ``__cause__`` is the
    backend's own error, for the log; ``str()`` is short and safe to log."""


class StorageFull(StorageUnavailable):
    """The volume (or the user's quota on it) is full: ENOSPC, EDQUOT."""


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


def write_temp_part(stream, *, session_id, part_number, max_bytes) -> StoredObject:
    """Stream ``stream`` into a new temp object, hashing it; at most ``max_bytes`` bytes.

    On any failure (including ``TooLarge`` or a client that disconnects) the partial
    object is removed before the exception propagates.
    """
    key = new_temp_key(session_id, part_number)
    return _save_stream(temp_storage(), key, HashingReader(stream, max_bytes))


def write_final(chunks: Iterable[bytes], *, file_id, now=None) -> StoredObject:
    """Stream ``chunks`` into a new final object and return its key, size and sha256."""
    key = new_final_key(file_id, now=now)
    return _save_stream(final_storage(), key, HashingReader(chunks))


def iter_temp(key, chunk_size=READ_CHUNK_BYTES) -> Iterator[bytes]:
    """Yield a temp object's bytes in chunks; ``FileNotFoundError`` if it is gone."""
    return _iter_object(temp_storage(), key, chunk_size)


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


def _is_local(storage):
    return isinstance(storage, FileSystemStorage)


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

    if isinstance(exc, FileNotFoundError):
        if _is_local(storage) and not os.path.isdir(storage.location):
            return StorageUnavailable(f"{storage.location}: {ROOT_MISSING_REASON}")
        return None
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(s3.describe(exc))
    if isinstance(exc, OSError | BotoCoreError | ClientError | Boto3Error):
        return StorageUnavailable(s3.describe(exc))
    return None


def _save_stream(storage, key, reader: HashingReader) -> StoredObject:
    try:
        with backend_faults(storage, reader):
            saved = storage.save(key, File(reader, name=key))
    except BaseException:
        with contextlib.suppress(Exception):  # the sweep removes what this cannot
            _delete_many(storage, [key])
        raise
    return StoredObject(key=saved, size=reader.size, sha256=reader.hexdigest())


def _iter_object(storage, key, chunk_size):
    with backend_faults(storage):
        yield from _read_object(storage, key, chunk_size)


def _read_object(storage, key, chunk_size):
    if _is_local(storage):
        with open(storage.path(key), "rb") as handle:
            while chunk := handle.read(chunk_size):
                yield chunk
        return
    client = storage.connection.meta.client
    try:
        response = client.get_object(Bucket=storage.bucket_name, Key=s3.full_key(storage, key))
    except client.exceptions.NoSuchKey as exc:
        raise FileNotFoundError(key) from exc
    body = response["Body"]
    try:
        yield from body.iter_chunks(chunk_size)
    finally:
        body.close()


def _delete_many(storage, keys):
    keys = list(dict.fromkeys(keys))
    if _is_local(storage):
        return local.delete_local(storage, keys)
    return s3.delete_s3(storage, keys)
