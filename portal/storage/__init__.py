"""The storage adapter the services use, over the django-storages aliases ``portal_temp``
and ``portal_final``: one ``Backend`` (local disk or S3) chosen from the settings, whose
capability flags the services read; any backend's failure is ``StorageUnavailable``.
Keys are generated here, never by a client. Design: docs/design.md.
"""

from collections.abc import Iterable, Iterator
from datetime import datetime

from django.core.signals import setting_changed
from django.dispatch import receiver

from portal.storage import local_in_place
from portal.storage.backends import (
    FINAL_ALIAS,
    READ_CHUNK_BYTES,
    TEMP_ALIAS,
    Backend,
    DeleteResult,
    HashingReader,
    ListedObject,
    RangeBusy,
    Source,
    SourceMismatch,
    StorageFull,
    StorageLinkRefused,
    StorageUnavailable,
    StoredObject,
    TooLarge,
    final_storage,
    is_local,
    new_final_key,
    new_temp_key,
    temp_storage,
)
from portal.storage.local import LocalStorage

__all__ = [
    "FINAL_ALIAS",
    "READ_CHUNK_BYTES",
    "TEMP_ALIAS",
    "DeleteResult",
    "LocalStorage",
    "RangeBusy",
    "Source",
    "SourceMismatch",
    "StorageFull",
    "StorageLinkRefused",
    "StorageUnavailable",
    "StoredObject",
    "TooLarge",
    "final_storage",
    "new_final_key",
    "new_temp_key",
    "temp_storage",
]

_CHOSEN: list[Backend] = []


def backend() -> Backend:
    """The backend the settings choose, made at first use and kept."""
    if not _CHOSEN:
        if is_local(temp_storage()):
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
    """Stream ``stream`` into a new temp object, hashing it, at most ``max_bytes`` bytes
    (else ``TooLarge``); nothing is left on failure. ``file_hash`` (the whole file's,
    when this part is the next one it needs) sees the same bytes; ``for_copy`` takes what
    a server-side copy needs."""
    key = new_temp_key(session_id, part_number)
    return backend().write_part(key, stream, max_bytes, file_hash=file_hash, for_copy=for_copy)


def hash_only(stream, *, max_bytes) -> StoredObject:
    """The size and sha256 of ``stream`` (a replay of a recorded part), storing nothing."""
    reader = HashingReader(stream, max_bytes)
    while reader.read(READ_CHUNK_BYTES):
        pass
    return StoredObject(key="", size=reader.size, sha256=reader.hexdigest())


def assembly_session(key):
    """The session whose assembly file ``key`` is, else None."""
    return local_in_place.session_of(key)


def part_source(number, size, sha256, temp_key, offset, md5=""):
    """The ``Source`` of part ``number`` as its row records it."""
    return Source(temp_key, size, sha256, name=f"part {number}", md5=md5, offset=offset)


def write_final(chunks: Iterable[bytes], *, file_id, now=None) -> StoredObject:
    chosen = backend()
    return chosen.save(chosen.final, new_final_key(file_id, now=now), HashingReader(chunks))


def assemble_final(sources, *, file_id, now=None, progress=None, **options) -> StoredObject:
    """Concatenate temp objects (``Source``), in order, into the file's final object.

    Each source must still match the size and sha256 recorded for it, else
    ``SourceMismatch`` and no final object is left; ``progress(assembled_bytes)`` is
    called as sources are done. ``options`` (``Backend.assemble``): ``file_hash`` (saved
    while the parts arrived, covering ``sources[:hashed]``), ``hashed``,
    ``on_upload(upload_id)`` (S3), ``room(size)`` (local, before a refused link turns into
    a copy), ``session_id`` (local: the file a part kept on its own is copied into).
    """
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
