"""Seeding helpers: sessions in every state, with real temp objects, for tests and benches.

Two speeds. ``make_session`` goes through ``portal.storage.write_temp_part`` (so keys and
objects are exactly what an upload leaves) and works on local files and S3 alike.
``bulk_seed`` writes rows with ``bulk_create`` and objects directly (plain files locally,
``put_object`` on S3), in chunks so memory stays flat: it is how the benchmark seeds
hundreds of thousands of parts. ``snapshot`` and ``storage_listing`` let a test compare
the whole state before and after a run (dry runs must change nothing).
"""

import io
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import time_machine
from django.contrib.auth import get_user_model
from django.core.files.storage import FileSystemStorage
from django.db import transaction
from django.utils import timezone

from portal import storage
from portal.models import IngestFile, JobRun, OutboxEvent, UploadPart, UploadSession
from tests import objects

Status = UploadSession.Status
PART_BYTES = b"p" * 64
TERMINAL_FILE_STATUS = {
    Status.COMPLETE: IngestFile.Status.STORED,
    Status.FAILED: IngestFile.Status.FAILED,
    Status.ABORTED: IngestFile.Status.FAILED,
}


def seed_owner(username="seed-owner"):
    user, _ = get_user_model().objects.get_or_create(username=username)
    return user


def make_session(
    owner,
    *,
    status=Status.IN_PROGRESS,
    total_parts=4,
    received=None,
    expires_at=None,
    finished_at=None,
    failure_reason="",
    part_bytes=PART_BYTES,
    as_uploaded=False,
):
    """One session in ``status`` with real temp objects for its ``received`` part numbers.

    ``received`` defaults to every part (none for ``init``). A ``complete`` session also
    gets its final object and a stored file, as finalize leaves them; terminal sessions get
    ``finished_at`` (default now).
    """
    now = timezone.now()
    if received is None:
        received = [] if status == Status.INIT else list(range(1, total_parts + 1))
    terminal = status in UploadSession.TERMINAL_STATUSES
    file = IngestFile.objects.create(
        original_filename="seed.bin",
        size_bytes=len(part_bytes) * total_parts,
        uploaded_by=owner,
        status=TERMINAL_FILE_STATUS.get(status, IngestFile.Status.UPLOADING),
    )
    session = UploadSession.objects.create(
        file=file,
        owner=owner,
        status=status,
        chunk_size_bytes=len(part_bytes),
        total_size_bytes=len(part_bytes) * total_parts,
        total_parts=total_parts,
        bytes_received=len(part_bytes) * len(received),
        completed_parts=len(received),
        expires_at=expires_at or now + timedelta(hours=1),
        failure_reason=failure_reason,
        finished_at=(finished_at or now) if terminal else None,
    )
    for number in received:
        add_part(session, number, part_bytes, as_uploaded)
    if status == Status.COMPLETE:
        stored = storage.write_final([part_bytes * len(received)], file_id=file.id)
        IngestFile.objects.filter(pk=file.pk).update(
            storage_key=stored.key, sha256=stored.sha256, stored_at=now
        )
    session.refresh_from_db()
    return session


def add_part(session, number, part_bytes=PART_BYTES, as_uploaded=False):
    """Store one part, the bytes first, then its row: as the upload does when
    ``as_uploaded``, else an object of its own (what cleanup counts one by one)."""
    if as_uploaded:
        obj = objects.store_part(session.id, number, part_bytes, (number - 1) * len(part_bytes))
    else:
        obj = storage.write_temp_part(
            io.BytesIO(part_bytes), session_id=session.id, part_number=number, max_bytes=10**9
        )
    return UploadPart.objects.create(
        session=session,
        part_number=number,
        size_bytes=obj.size,
        sha256=obj.sha256,
        temp_key=obj.key,
        temp_offset=obj.offset,
    )


def put_untracked_temp(modified_at=None, part_bytes=PART_BYTES):
    """A temp object no row points to (a crash between write and commit), of a given age."""
    key = storage.new_temp_key(uuid.uuid4(), 1)
    temp = storage.temp_storage()
    if isinstance(temp, FileSystemStorage):
        path = temp.path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(part_bytes)
        if modified_at is not None:
            os.utime(path, (modified_at.timestamp(), modified_at.timestamp()))
        return key
    # moto runs in this process, so its LastModified follows time-machine.
    with time_machine.travel(modified_at or timezone.now(), tick=False):
        _s3_client(temp).put_object(
            Bucket=temp.bucket_name, Key=temp._normalize_name(key), Body=part_bytes
        )
    return key


@dataclass
class Seeded:
    sessions: int = 0
    parts: int = 0
    objects: int = 0


def bulk_seed(
    owner,
    *,
    n,
    status=Status.IN_PROGRESS,
    parts_per_session=4,
    expires_at=None,
    finished_at=None,
    part_bytes=PART_BYTES,
    write_objects=True,
    chunk=2000,
    progress=None,
):
    """Seed ``n`` sessions x ``parts_per_session`` parts fast: rows in bulk, objects direct.

    Rows and objects are written ``chunk`` sessions at a time (flat memory). Returns counts.
    """
    expires_at = expires_at or timezone.now() + timedelta(hours=1)
    terminal = status in UploadSession.TERMINAL_STATUSES
    finished_at = (finished_at or timezone.now()) if terminal else None
    writer = _ObjectWriter(part_bytes) if write_objects else None
    seeded = Seeded()
    for start in range(0, n, chunk):
        count = min(chunk, n - start)
        files, sessions, parts = [], [], []
        for _ in range(count):
            file = IngestFile(
                id=uuid.uuid4(),
                original_filename="bulk.bin",
                size_bytes=len(part_bytes) * parts_per_session,
                uploaded_by=owner,
                status=TERMINAL_FILE_STATUS.get(status, IngestFile.Status.UPLOADING),
            )
            session = UploadSession(
                id=uuid.uuid4(),
                file=file,
                owner=owner,
                status=status,
                chunk_size_bytes=len(part_bytes),
                total_size_bytes=len(part_bytes) * parts_per_session,
                total_parts=parts_per_session,
                bytes_received=len(part_bytes) * parts_per_session,
                completed_parts=parts_per_session,
                expires_at=expires_at,
                finished_at=finished_at,
            )
            files.append(file)
            sessions.append(session)
            for number in range(1, parts_per_session + 1):
                key = storage.new_temp_key(session.id, number)
                parts.append(
                    UploadPart(
                        session=session,
                        part_number=number,
                        size_bytes=len(part_bytes),
                        sha256="0" * 64,
                        temp_key=key,
                    )
                )
        if writer:
            writer.write([part.temp_key for part in parts])
        with transaction.atomic():
            IngestFile.objects.bulk_create(files, batch_size=500)
            UploadSession.objects.bulk_create(sessions, batch_size=500)
            UploadPart.objects.bulk_create(parts, batch_size=500)
        seeded.sessions += count
        seeded.parts += len(parts)
        seeded.objects += len(parts) if writer else 0
        if progress:
            progress(seeded)
    return seeded


class _ObjectWriter:
    """Writes temp objects straight to the backend (no Storage.save overhead)."""

    def __init__(self, part_bytes):
        self.part_bytes = part_bytes
        self.temp = storage.temp_storage()
        self.local = isinstance(self.temp, FileSystemStorage)
        self.made_dirs = set()

    def write(self, keys):
        if not self.local:
            client = _s3_client(self.temp)
            for key in keys:
                client.put_object(
                    Bucket=self.temp.bucket_name,
                    Key=self.temp._normalize_name(key),
                    Body=self.part_bytes,
                )
            return
        root = self.temp.location
        for key in keys:
            shard = key.split("/", 1)[0]
            if shard not in self.made_dirs:
                os.makedirs(os.path.join(root, shard), exist_ok=True)
                self.made_dirs.add(shard)
            with open(os.path.join(root, key), "wb") as handle:
                handle.write(self.part_bytes)


def _s3_client(s3_storage):
    return s3_storage.connection.meta.client


def storage_listing():
    """Every temp and final object key, sorted: to compare storage before and after."""
    temp, final = storage.temp_storage(), storage.final_storage()
    return {
        "temp": sorted(_list(temp)),
        "final": sorted(_list(final)),
    }


def _list(which):
    listing = storage.list_objects(which)
    return (item.key for item in listing)


def snapshot():
    """All portal rows (as value tuples) and all object keys, for before/after comparisons."""
    tables = {
        model.__name__: sorted(
            tuple(str(value) for value in row) for row in model.objects.values_list()
        )
        for model in (IngestFile, UploadSession, UploadPart, OutboxEvent, JobRun)
    }
    return {"rows": tables, "storage": storage_listing()}


def temp_keys_of(session):
    return [key for key in session.parts.values_list("temp_key", flat=True) if key]


def ago(**delta) -> datetime:
    return timezone.now() - timedelta(**delta)
