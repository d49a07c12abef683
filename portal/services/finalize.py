"""Finalize: assemble the parts, in order, into the final object in one streaming pass.

One finalize per session runs at a time on any host (``portal.locks``, not a database
transaction: the assembly of a large file takes long, and on SQLite a long write
transaction would stall every other upload). Each part's bytes are checked against the
sha256 recorded when it arrived while they stream into final storage, and the file's
sha256 is computed on the way. The final key is a function of the file (id and creation
date), so a finalize retried after a crash overwrites the same object, and cleanup can
find the object of a failed file. The outcome is recorded in one short transaction with
the ``file.uploaded`` outbox event. Temp parts stay for cleanup to reclaim.
"""

import hashlib
import logging

from django.db import transaction
from django.utils import timezone

from portal import locks, storage
from portal.models import IngestFile, UploadPart, UploadSession
from portal.observability import log_event
from portal.services import guards
from portal.services.errors import Conflict, Gone
from portal.services.faults import storage_faults
from portal.services.outbox import enqueue_file_uploaded
from portal.services.sessions import compact_ranges, ensure_open, get_session

logger = logging.getLogger(__name__)

MAX_LISTED_MISSING = 1000


class PartCorrupt(Exception):
    """A part's temp object is gone or no longer matches the sha256 recorded for it."""


def finalize_session(owner, session_id):
    """Assemble and store the file; returns the stored ``IngestFile`` (idempotent)."""
    session = get_session(owner, session_id)
    if session.status == UploadSession.Status.COMPLETE:
        return session.file
    try:
        with (
            locks.hold(f"finalize:{session.pk}"),
            storage_faults(
                "assembling the file", session_id=str(session.pk), file_id=str(session.file_id)
            ),
        ):
            return _finalize_locked(session.pk)
    except locks.LockBusy:
        raise Conflict(
            "this session is being finalized by another request; ask again shortly",
            code="finalize_in_progress",
        ) from None


def _finalize_locked(session_pk):
    session = UploadSession.objects.select_related("file__uploaded_by").get(pk=session_pk)
    if session.status == UploadSession.Status.COMPLETE:
        return session.file
    ensure_open(session)
    parts = list(
        UploadPart.objects.filter(session_id=session_pk)
        .order_by("part_number")
        .values_list("part_number", "size_bytes", "sha256", "temp_key")
    )
    _ensure_complete(session, [part[0] for part in parts])
    guards.ensure_room("final", session.total_size_bytes)
    file = session.file
    try:
        stored = storage.write_final(_verified_chunks(parts), file_id=file.pk, now=file.created_at)
        if stored.size != session.total_size_bytes:
            raise PartCorrupt(f"assembled {stored.size} bytes, expected {session.total_size_bytes}")
    except PartCorrupt as exc:
        _fail(session, str(exc))
        raise Gone(f"the upload session failed: {exc}", code="part_corrupt") from None
    return _commit(session, stored)


def _ensure_complete(session, received):
    missing = sorted(set(range(1, session.total_parts + 1)).difference(received))
    if missing:
        raise Conflict(
            f"{len(missing)} of {session.total_parts} parts are missing",
            code="parts_missing",
            details={
                "missing_parts": compact_ranges(missing),
                "missing_part_numbers": missing[:MAX_LISTED_MISSING],
            },
        )


def _verified_chunks(parts):
    """Yield every part's bytes in order, checking each against its recorded sha256."""
    for number, size, sha256, temp_key in parts:
        if not temp_key:
            raise PartCorrupt(f"part {number} has no temp object any more")
        digest = hashlib.sha256()
        received = 0
        try:
            for chunk in storage.iter_temp(temp_key):
                digest.update(chunk)
                received += len(chunk)
                yield chunk
        except FileNotFoundError:
            raise PartCorrupt(f"part {number} is missing from temp storage") from None
        if received != size or digest.hexdigest() != sha256:
            raise PartCorrupt(f"part {number} no longer matches the sha256 recorded for it")


def _fail(session, reason):
    """Mark an open session failed (and its file): a conditional update."""
    now = timezone.now()
    with transaction.atomic():
        failed = UploadSession.objects.filter(
            pk=session.pk, status__in=UploadSession.OPEN_STATUSES
        ).update(
            status=UploadSession.Status.FAILED,
            failure_reason=reason[:255],
            finished_at=now,
            updated_at=now,
        )
        if failed:
            IngestFile.objects.filter(pk=session.file_id).update(
                status=IngestFile.Status.FAILED, updated_at=now
            )
    logger.warning(
        "finalize failed: %s",
        reason,
        extra={"session_id": str(session.pk), "file_id": str(session.file_id)},
    )


def _commit(session, stored):
    """One short transaction: file stored, session complete, outbox event."""
    now = timezone.now()
    file = session.file
    with transaction.atomic():
        locked = UploadSession.objects.select_for_update().get(pk=session.pk)
        closed = locked.is_terminal
        if not closed:
            file.sha256 = stored.sha256
            file.size_bytes = stored.size
            file.storage_key = stored.key
            file.status = IngestFile.Status.STORED
            file.stored_at = now
            file.save(
                update_fields=[
                    "sha256",
                    "size_bytes",
                    "storage_key",
                    "status",
                    "stored_at",
                    "updated_at",
                ]
            )
            UploadSession.objects.filter(pk=session.pk).update(
                status=UploadSession.Status.COMPLETE, finished_at=now, updated_at=now
            )
            enqueue_file_uploaded(file)
    if closed:
        # Aborted or expired by cleanup while the parts were assembled: the object has
        # no owner now, so it goes (storage first; nothing in the database points to it).
        storage.delete_final([stored.key])
        ensure_open(locked)
    log_event(
        logger,
        "file.stored",
        "file assembled and stored",
        session_id=str(session.pk),
        file_id=str(file.pk),
        size_bytes=stored.size,
        sha256=stored.sha256,
    )
    return file
