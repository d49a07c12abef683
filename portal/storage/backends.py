"""The storage backends behind the adapter: which one, reading an object, and what a
failing backend's errors mean (``StorageUnavailable``), for every module of the package."""

import contextlib
import errno
import os

from django.core.files.storage import FileSystemStorage, storages

from portal.storage import s3
from portal.storage.local import ROOT_MISSING_REASON, LinkRefused, StorageRootMissing, open_read

TEMP_ALIAS = "portal_temp"
FINAL_ALIAS = "portal_final"


class StorageUnavailable(Exception):
    """The backend failed (unreachable, refusing, full, unmounted): nothing was kept and
    nothing is lost; the same call can succeed once storage is back. ``__cause__`` is the
    backend's own error, for the log; ``str()`` is short and safe to log."""


class StorageFull(StorageUnavailable):
    """The volume (or the user's quota on it) is full: ENOSPC, EDQUOT."""


class StorageLinkRefused(StorageUnavailable):
    """A link under a local storage root that the portal did not make (``local_walk``):
    refused, never followed; an operator must remove it."""


def temp_storage():
    return storages[TEMP_ALIAS]


def final_storage():
    return storages[FINAL_ALIAS]


def is_local(storage):
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

    if isinstance(exc, LinkRefused):
        return StorageLinkRefused(f"{exc.filename}: {exc.strerror}")
    if isinstance(exc, StorageRootMissing):
        return StorageUnavailable(f"{exc.filename}: {ROOT_MISSING_REASON}")
    if isinstance(exc, FileNotFoundError):
        if is_local(storage) and not os.path.isdir(storage.location):
            return StorageUnavailable(f"{storage.location}: {ROOT_MISSING_REASON}")
        return None
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(s3.describe(exc))
    if isinstance(exc, OSError | BotoCoreError | ClientError | Boto3Error):
        return StorageUnavailable(s3.describe(exc))
    return None


def iter_object(storage, key, chunk_size):
    with backend_faults(storage):
        yield from read_object(storage, key, chunk_size)


def read_object(storage, key, chunk_size):
    if is_local(storage):
        with open_read(storage, key) as handle:
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
