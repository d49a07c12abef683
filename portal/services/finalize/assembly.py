"""Assembling a ``finalizing`` session's parts into its final object, exactly once; the
caller holds the session's lock (docs/design.md, "How an upload works", step 5)."""

import contextlib
import logging

from django.db import transaction
from django.utils import timezone

from portal import storage
from portal.models import IngestFile, UploadPart, UploadSession
from portal.observability import log_event
from portal.parts import compact_ranges
from portal.services import filehash, guards
from portal.services.errors import Conflict, Gone
from portal.services.finalize import lease
from portal.services.outbox import enqueue_file_uploaded
from portal.services.sessions import close_sessions, ensure_open

logger = logging.getLogger("portal.services.finalize")

MAX_LISTED_MISSING = 1000
STORED_FIELDS = ["sha256", "size_bytes", "storage_key", "status", "stored_at", "updated_at"]
Status = UploadSession.Status


class PartCorrupt(Exception):
    """A part's temp object is gone or no longer matches the sha256 recorded for it."""


def part_rows(session_pk):
    """(part_number, size_bytes, sha256, temp_key, temp_offset, md5) of every part, in order."""
    return list(
        UploadPart.objects.filter(session_id=session_pk)
        .order_by("part_number")
        .values_list("part_number", "size_bytes", "sha256", "temp_key", "temp_offset", "md5")
    )


def assemble(session_pk):
    """The ``IngestFile`` once stored; ``Gone`` after failing the session when a part no
    longer matches (a storage outage leaves it ``finalizing`` for a later attempt)."""
    session = UploadSession.objects.select_related("file__uploaded_by").get(pk=session_pk)
    if session.status == Status.COMPLETE:
        return session.file
    if session.status != Status.FINALIZING:
        ensure_open(session)  # failed or aborted meanwhile: 410
        raise Conflict("the session is not being finalized", code="session_not_finalizing")
    try:
        sources = _sources_with_room(session)
        stored = _build(session, sources)
        if stored.size != session.total_size_bytes:
            raise PartCorrupt(f"assembled {stored.size} bytes, expected {session.total_size_bytes}")
    except PartCorrupt as exc:
        fail(session, str(exc))
        raise Gone(f"the upload session failed: {exc}", code="part_corrupt") from None
    return _commit(session, stored)


def ensure_ready(session):
    """409 ``parts_missing`` or 507 before a finalize starts (a part without a temp object
    is left to ``assemble``, which fails the session)."""
    with contextlib.suppress(PartCorrupt):
        _sources_with_room(session)


def _sources_with_room(session):
    """Every part's source once the final volume has room for assembling them; 409
    ``parts_missing`` unless every part is in, ``PartCorrupt`` for one without its object."""
    parts = part_rows(session.pk)
    missing = sorted(set(range(1, session.total_parts + 1)).difference(p[0] for p in parts))
    if missing:
        raise Conflict(
            f"{len(missing)} of {session.total_parts} parts are missing",
            code="parts_missing",
            details={
                "missing_parts": compact_ranges(missing),
                "missing_part_numbers": missing[:MAX_LISTED_MISSING],
            },
        )
    sources = _sources(parts)
    guards.ensure_room("final", storage.backend().final_bytes(sources))
    return sources


def _build(session, sources):
    """The final object, its sha256 continuing the saved hash, the lease renewed after each
    part; a refused link becomes a copy only if the copy fits."""
    file = session.file
    file_hash, hashed = filehash.for_assembly(session)
    try:
        return storage.assemble_final(
            sources,
            file_id=file.pk,
            session_id=session.pk,
            now=file.created_at,
            file_hash=file_hash,
            hashed=hashed,
            progress=lease.progress_recorder(session.pk),
            on_upload=lambda upload_id: lease.record_upload(session.pk, upload_id),
            room=lambda size: guards.ensure_room("final", size),
        )
    except storage.SourceMismatch as exc:
        raise PartCorrupt(str(exc)) from None


def _sources(parts):
    sources = []
    for number, size, sha256, temp_key, offset, md5 in parts:
        if not temp_key:
            raise PartCorrupt(f"part {number} has no temp object any more")
        sources.append(storage.part_source(number, size, sha256, temp_key, offset, md5))
    return sources


def fail(session, reason):
    """Fail a session being finalized (and its file): a conditional update."""
    close_sessions(
        [(session.pk, session.file_id)], Status.FAILED, reason, among=UploadSession.ACTIVE_STATUSES
    )
    logger.warning(
        "finalize failed: %s",
        reason,
        extra={"session_id": str(session.pk), "file_id": str(session.file_id)},
    )


def _commit(session, stored):
    """File stored, session complete, outbox event: one transaction, only for a session
    still ``finalizing``; one closed meanwhile loses the object again."""
    now = timezone.now()
    file = session.file
    with transaction.atomic():
        locked = UploadSession.objects.select_for_update().get(pk=session.pk)
        if locked.status == Status.FINALIZING:
            file.sha256 = stored.sha256
            file.size_bytes = stored.size
            file.storage_key = stored.key
            file.status = IngestFile.Status.STORED
            file.stored_at = now
            file.save(update_fields=STORED_FIELDS)
            UploadSession.objects.filter(pk=session.pk).update(
                status=Status.COMPLETE,
                finished_at=now,
                updated_at=now,
                assembly_lease_until=None,
                assembled_bytes=stored.size,
            )
            enqueue_file_uploaded(file)
    if locked.status == Status.COMPLETE:
        return IngestFile.objects.get(pk=file.pk)
    if locked.is_terminal:
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
