"""The storage adapter the services use, over the django-storages aliases.

``portal_temp`` holds received parts, ``portal_final`` the assembled files (see
``boot.settings``). Writes go through ``Storage.save`` so either backend works; the
operations Django's Storage API has no efficient form of (bulk delete, listing by age,
streaming reads) talk to the backend directly: ``os`` for FileSystemStorage, the boto3
client of S3Storage for S3 (DeleteObjects with up to 1,000 keys, paginated listings).

Keys are generated here, never taken from a client. Temp keys sit in 256 fixed shard
directories (``ab/<session>-<part>-<random>``), so deleting parts never leaves empty
per-session directories behind. Nothing here reads a whole part or file into memory.
"""

import hashlib
import os
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File
from django.core.files.storage import FileSystemStorage, storages

TEMP_ALIAS = "portal_temp"
FINAL_ALIAS = "portal_final"
READ_CHUNK_BYTES = 1024 * 1024
S3_DELETE_BATCH = 1000
# Local deletes: up to 8 threads, each with at least 64 keys (below that, one thread).
# On a 2-core ext4 host, 8 threads unlink about 3x faster than one.
LOCAL_DELETE_THREADS = 8
LOCAL_DELETE_MIN_PER_THREAD = 64
# A missing object counts as deleted, but not when the whole root is gone: an unmounted
# volume would otherwise make every tracked key look deleted and be forgotten.
ROOT_MISSING = "FileNotFoundError: storage root is missing (volume not mounted?)"


class TooLarge(Exception):
    """The stream carried more bytes than the caller allowed; nothing was kept."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str


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


class HashingReader:
    """A read-only, non-seekable stream that hashes and counts what passes through it.

    Reading more than ``limit`` bytes raises ``TooLarge`` before the excess is returned,
    so an over-long body is never stored.
    """

    closed = False

    def __init__(self, source, limit=None):
        self._read = source.read if hasattr(source, "read") else _IterReader(source).read
        self.limit = limit
        self.size = 0
        self._sha = hashlib.sha256()

    def read(self, size=-1):
        if size is None or size < 0:
            size = READ_CHUNK_BYTES
        if self.limit is not None:
            size = min(size, self.limit - self.size + 1)
        data = self._fill(size)
        if self.limit is not None and self.size + len(data) > self.limit:
            raise TooLarge(f"more than {self.limit} bytes")
        self.size += len(data)
        self._sha.update(data)
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


def temp_storage():
    return storages[TEMP_ALIAS]


def final_storage():
    return storages[FINAL_ALIAS]


def backend_name(storage=None):
    """``local`` or ``s3``: what the outbox payload reports as the storage backend."""
    return "local" if _is_local(storage or final_storage()) else "s3"


def bucket_name(storage=None):
    """The S3 bucket, or ``""`` for local storage."""
    storage = storage or final_storage()
    return "" if _is_local(storage) else storage.bucket_name


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
    storage = temp_storage()
    listing = _list_local(storage) if _is_local(storage) else _list_s3(storage)
    for item in listing:
        if older_than is None or item.modified_at < older_than:
            yield item


def _is_local(storage):
    return isinstance(storage, FileSystemStorage)


def _save_stream(storage, key, reader: HashingReader) -> StoredObject:
    try:
        saved = storage.save(key, File(reader, name=key))
    except BaseException:
        _delete_many(storage, [key])
        raise
    return StoredObject(key=saved, size=reader.size, sha256=reader.hexdigest())


def _iter_object(storage, key, chunk_size):
    if _is_local(storage):
        with open(storage.path(key), "rb") as handle:
            while chunk := handle.read(chunk_size):
                yield chunk
        return
    client = storage.connection.meta.client
    try:
        response = client.get_object(Bucket=storage.bucket_name, Key=_s3_key(storage, key))
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
        return _delete_local(storage, keys)
    return _delete_s3(storage, keys)


def _delete_local(storage, keys):
    """Unlink in a few threads: ``unlink`` releases the GIL and, with keys spread over
    256 shard directories, the kernel runs them side by side (``bench/cleanup.py``)."""
    root = storage.location
    paths = [_local_path(root, key) for key in keys]
    threads = max(1, min(LOCAL_DELETE_THREADS, len(paths) // LOCAL_DELETE_MIN_PER_THREAD))
    unlink = partial(_unlink_all, root=root)
    if threads == 1:
        errors = unlink(paths)
    else:
        errors = {}
        with ThreadPoolExecutor(threads, thread_name_prefix="portal-unlink") as pool:
            for failed in pool.map(unlink, [paths[i::threads] for i in range(threads)]):
                errors.update(failed)
    result = DeleteResult()
    for key, path in zip(keys, paths, strict=True):
        if path in errors:
            result.failed[key] = errors[path]
        else:
            result.deleted.append(key)
    return result


def _local_path(root, key):
    """``root/key``, refusing a key that could leave the root.

    ``FileSystemStorage.path`` does the same through ``safe_join`` at about 8 us a key,
    a tenth of a whole unlink; keys here come from our own rows and listings.
    """
    if not key or key.startswith("/") or ".." in key.split("/") or "\0" in key:
        raise SuspiciousFileOperation(f"refusing storage key {key!r}")
    return os.path.join(root, key)


def _unlink_all(paths, *, root):
    """Unlink ``paths``; return {path: reason} for those that failed (missing is deleted)."""
    errors = {}
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            if not os.path.isdir(root):
                errors[path] = ROOT_MISSING
        except OSError as exc:
            errors[path] = f"{type(exc).__name__}: {exc.strerror or exc}"
    return errors


def _delete_s3(storage, keys):
    from botocore.exceptions import BotoCoreError, ClientError

    result = DeleteResult()
    client = storage.connection.meta.client
    for start in range(0, len(keys), S3_DELETE_BATCH):
        batch = keys[start : start + S3_DELETE_BATCH]
        by_s3_key = {_s3_key(storage, key): key for key in batch}
        result.requests += 1
        try:
            response = client.delete_objects(
                Bucket=storage.bucket_name,
                Delete={"Objects": [{"Key": k} for k in by_s3_key], "Quiet": True},
            )
        except (BotoCoreError, ClientError) as exc:
            reason = _s3_error(exc)
            result.failed.update({key: reason for key in batch})
            continue
        for error in response.get("Errors", []):
            key = by_s3_key.get(error.get("Key"), error.get("Key"))
            if error.get("Code") != "NoSuchKey":
                result.failed[key] = f"{error.get('Code')}: {error.get('Message', '')}"[:200]
        result.deleted.extend(key for key in batch if key not in result.failed)
    return result


def _list_local(storage):
    """Walk the temp root; a missing root is empty, any other error (an outage) propagates."""
    root = storage.location
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            entries = os.scandir(directory)
        except FileNotFoundError:
            continue  # the root not created yet, or a shard removed meanwhile
        with entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    try:
                        modified = datetime.fromtimestamp(entry.stat().st_mtime, UTC)
                    except FileNotFoundError:
                        continue  # deleted while we walked
                    key = os.path.relpath(entry.path, root).replace(os.sep, "/")
                    yield ListedObject(key=key, modified_at=modified)


def _list_s3(storage):
    client = storage.connection.meta.client
    prefix = f"{storage.location.strip('/')}/" if storage.location else ""
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=storage.bucket_name, Prefix=prefix):
        for entry in page.get("Contents", ()):
            yield ListedObject(key=entry["Key"][len(prefix) :], modified_at=entry["LastModified"])


def _s3_key(storage, key):
    return storage._normalize_name(key)


def _s3_error(exc):
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    return f"{type(exc).__name__}: {code}" if code else type(exc).__name__
