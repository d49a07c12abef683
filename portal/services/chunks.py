"""Receiving one part: stored first, then recorded under the session's row lock, so the
database is never locked while bytes travel (docs/design.md, "How an upload works")."""

import contextlib
import hashlib
import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from portal import storage
from portal.models import UploadPart, UploadSession
from portal.observability import log_event
from portal.parts import part_offset, part_size
from portal.services import filehash, guards, part_sql
from portal.services.errors import (
    ApiError,
    BadRequest,
    Conflict,
    LengthRequired,
    NotFound,
    TooLarge,
)
from portal.services.guards import storage_faults
from portal.services.sessions import PART_FIELDS, ensure_open, get_session, ttl

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartReceipt:
    part_number: int
    size_bytes: int
    sha256: str
    created: bool
    completed_parts: int
    total_parts: int
    expires_at: object
    hash_behind: bool = False

    def as_dict(self):
        return {
            "part_number": self.part_number,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "completed_parts": self.completed_parts,
            "total_parts": self.total_parts,
            "expires_at": self.expires_at.isoformat(),
        }


def receive_part(owner, session_id, part_number, stream, content_length):
    """Store part ``part_number`` read from ``stream``; ``created`` False for a replay."""
    session = get_session(owner, session_id, PART_FIELDS)
    ensure_open(session)
    expected = _expected_size(session, part_number, content_length)
    context = {"session_id": str(session.pk), "part_number": part_number}
    file_hash = filehash.for_part(session, part_number)
    with storage_faults("storing a part", **context):
        guards.ensure_room("temp", expected)
    with contextlib.ExitStack() as held:
        place, write = _claim_range(held, session, part_number, expected, context)
        stored = _store(session, part_number, expected, stream, place, file_hash, context, write)
        try:
            if stored.size != expected:
                raise BadRequest(
                    f"part {part_number} ended after {stored.size} of {expected} bytes",
                    code="incomplete_part",
                )
            receipt = _record(session.pk, part_number, stored, file_hash)
        except ApiError:
            _discard(stored, place)  # refused before or inside the rolled-back transaction
            raise
        if not receipt.created:
            _discard(stored, place)
    if receipt.created:
        if receipt.hash_behind and filehash.applies(session):
            filehash.catch_up(session.pk)
        log_event(
            logger,
            "part.received",
            "part stored",
            session_id=str(session.pk),
            part_number=part_number,
            size_bytes=stored.size,
        )
    return receipt


def _claim_range(held, session, part_number, expected, context):
    """``(range, write)``: the part's range of its session's file, held in ``held`` until
    the part is recorded (None where parts are objects of their own); ``write`` False when
    the part is recorded already or the session closed: the body is then only hashed."""
    offset = part_offset(part_number, session.chunk_size_bytes)
    with storage_faults("storing a part", **context):
        try:
            place = held.enter_context(storage.backend().part_range(session.pk, offset, expected))
        except storage.RangeBusy:
            raise Conflict(
                f"part {part_number} is being uploaded by another request; retry once it ended",
                code="part_in_progress",
            ) from None
    if place is None:
        return None, True
    status, recorded = part_sql.range_state(session.pk, part_number)
    if status not in UploadSession.OPEN_STATUSES:
        place.abandon()
        return place, False
    return place, not recorded


def _discard(stored, place):
    """What is known not to be recorded goes. A failure that may have committed keeps it:
    the sweep, the part's next upload or the session's end takes it then."""
    if stored.offset is not None:
        place.release()
    elif stored.key:
        storage.delete_temp([stored.key])


def _store(session, part_number, expected, stream, place, file_hash, context, write):
    """The ``StoredObject`` of the body written to ``place`` or a temp object (or hashed)."""
    try:
        with storage_faults("storing a part", **context):
            if not write:
                return storage.hash_only(_ClientStream(stream), max_bytes=expected)
            if place is not None:
                return place.write(_ClientStream(stream), max_bytes=expected, file_hash=file_hash)
            return storage.write_temp_part(
                _ClientStream(stream),
                session_id=session.pk,
                part_number=part_number,
                max_bytes=expected,
                file_hash=file_hash,
                for_copy=filehash.applies(session),
            )
    except ClientDisconnected as exc:
        raise BadRequest(
            f"part {part_number}: the request body broke off ({exc})", code="incomplete_part"
        ) from None
    except storage.TooLarge:
        raise TooLarge(
            f"part {part_number} has more than {expected} bytes", code="part_too_large"
        ) from None


class ClientDisconnected(Exception):
    """Reading the request body failed: the client went away mid-part."""


class _ClientStream:
    """Tells a broken request body apart from a failing storage backend; has ``readinto``
    when the body has (local storage then reads into its own buffer without copies)."""

    def __init__(self, stream):
        self._stream = stream
        if hasattr(stream, "readinto"):
            self.readinto = self._readinto

    def read(self, size=-1):
        try:
            return self._stream.read(size)
        except OSError as exc:
            raise ClientDisconnected(type(exc).__name__) from exc

    def _readinto(self, buffer):
        try:
            return self._stream.readinto(buffer)
        except OSError as exc:
            raise ClientDisconnected(type(exc).__name__) from exc


def _expected_size(session, part_number, content_length):
    """Check the part number and the declared length before reading a single byte."""
    if not 1 <= part_number <= session.total_parts:
        raise BadRequest(
            f"part_number must be between 1 and {session.total_parts}",
            code="invalid_part_number",
        )
    expected = part_size(part_number, session.chunk_size_bytes, session.total_size_bytes)
    if content_length in (None, ""):
        raise LengthRequired(
            f"send Content-Length: {expected} (chunked bodies are not accepted)",
            code="length_required",
        )
    try:
        declared = int(content_length)
    except ValueError:
        raise BadRequest("Content-Length is not a number", code="invalid_content_length") from None
    if declared > expected:
        raise TooLarge(
            f"part {part_number} must be {expected} bytes, Content-Length says {declared}",
            code="part_too_large",
        )
    if declared != expected:
        raise BadRequest(
            f"part {part_number} must be {expected} bytes, Content-Length says {declared}",
            code="part_size_mismatch",
        )
    return expected


def _record(session_pk, part_number, stored, file_hash):
    """Insert the part under the session's row lock (or recognise a replay or a conflict),
    saving ``file_hash`` when the file's hash needs this part."""
    now = timezone.now()
    try:
        with transaction.atomic():
            session = part_sql.lock_session(session_pk, PART_FIELDS)
            if session is None:  # deleted since the request looked it up
                raise NotFound("no such upload session", code="session_not_found")
            ensure_open(session, now)
            numbers = {part_number, part_number + 1, session.hashed_parts + 1}
            recorded = part_sql.recorded_parts(session_pk, numbers)
            existing = recorded.get(part_number)
            if existing is not None:
                return _replay(session, existing, stored)
            part_sql.insert_part(session_pk, part_number, stored, now)
            expires_at = now + ttl()
            saved = filehash.saved_fields(session, part_number, file_hash)
            part_sql.count_part(
                session_pk, stored.size, expires_at=expires_at, now=now, hashed=saved
            )
    except IntegrityError:
        # Only reachable where the row lock is not exclusive; the unique constraint held.
        existing = UploadPart.objects.get(session_id=session_pk, part_number=part_number)
        return _replay(UploadSession.objects.get(pk=session_pk), existing, stored)
    return PartReceipt(
        part_number=part_number,
        size_bytes=stored.size,
        sha256=stored.sha256,
        created=True,
        completed_parts=session.completed_parts + 1,
        total_parts=session.total_parts,
        expires_at=expires_at,
        hash_behind=_hash_behind(session, part_number, saved, recorded),
    )


def _hash_behind(locked, part_number, saved, recorded):
    """Whether a catch-up after this part would find a part to hash: only when the part the
    hash needs next is in. If not, the request that records it looks after its commit."""
    needed = saved.get("hashed_parts", locked.hashed_parts) + 1
    return part_number == needed or needed in recorded


def _replay(session, existing, stored):
    recorded = _recorded_sha256(session.pk, existing)
    if recorded != stored.sha256:
        raise Conflict(
            f"part {existing.part_number} was already stored with different bytes "
            f"(sha256 {recorded or 'unknown: its bytes are gone'})",
            code="part_conflict",
        )
    return PartReceipt(
        part_number=existing.part_number,
        size_bytes=existing.size_bytes,
        sha256=recorded,
        created=False,
        completed_parts=session.completed_parts,
        total_parts=session.total_parts,
        expires_at=session.expires_at,
    )


def _recorded_sha256(session_pk, existing):
    """The recorded part's sha256; for a part tus wrote in place, whose bytes only the
    file's hash took (no sha256 of its own, ``PartRange.write``), that of its range as it
    lies ("" when it is gone)."""
    if existing.sha256:
        return existing.sha256
    row = UploadPart.objects.filter(session_id=session_pk, part_number=existing.part_number)
    key, offset = row.values_list("temp_key", "temp_offset").get()
    source = storage.part_source(existing.part_number, existing.size_bytes, "", key, offset)
    digest = hashlib.sha256()
    try:
        with storage_faults("reading a part", session_id=str(session_pk)):
            storage.backend().hash_part(source, digest)
    except storage.SourceMismatch:
        return ""
    return digest.hexdigest()
