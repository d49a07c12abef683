"""Upload sessions: creation (idempotent per owner and key), lookup, status, abort. Anyone
but the owner gets the 404 of a session that does not exist."""

import logging
import math
import unicodedata
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.lookups import one_or_none
from portal.models import IngestFile, UploadSession
from portal.observability import log_event
from portal.parts import compact_ranges, part_count
from portal.services import guards, part_sql
from portal.services.errors import BadRequest, Conflict, Gone, NotFound, TooLarge

logger = logging.getLogger(__name__)

MAX_NAME_CHARS = 255
MAX_IDEMPOTENCY_KEY_CHARS = 255
MAX_PARTS = 100_000
DEFAULT_CONTENT_TYPE = "application/octet-stream"


def ttl():
    return timedelta(hours=settings.PORTAL_SESSION_TTL_HOURS)


def create_session(owner, data):
    """``(session, created)`` from the request's JSON object; the same owner and
    ``idempotency_key`` get the existing session, also when identical requests race (a
    repeat is never refused for the room its first request took)."""
    spec = _validated(data)
    key = spec.pop("idempotency_key")
    session = _by_idempotency_key(owner, key) if key else None
    if session is None:
        try:
            session, created = _insert(owner, key, **spec)
        except IntegrityError:
            session = _by_idempotency_key(owner, key) if key else None
            if session is None:
                raise
        else:
            if created:
                _log_created(session)
                return session, True
    return _same_request(session, spec), False


def _insert(owner, key, *, filename, content_type, size_bytes, chunk_size_bytes):
    """``(session, True)``, or ``(the session of this key, False)`` when one committed first."""
    now = timezone.now()
    with transaction.atomic():
        guards.lock_owner(owner)
        existing = _by_idempotency_key(owner, key) if key else None
        if existing is not None:
            return existing, False
        guards.reserve(owner, size_bytes)
        guards.ensure_room_for_a_new_session()
        file = IngestFile.objects.create(
            original_filename=filename,
            content_type=content_type,
            size_bytes=size_bytes,
            uploaded_by=owner,
        )
        session = UploadSession.objects.create(
            file=file,
            owner=owner,
            chunk_size_bytes=chunk_size_bytes,
            total_size_bytes=size_bytes,
            total_parts=part_count(size_bytes, chunk_size_bytes),
            idempotency_key=key,
            expires_at=now + ttl(),
        )
        return session, True


def _log_created(session):
    log_event(
        logger,
        "session.created",
        "upload session created",
        session_id=str(session.id),
        file_id=str(session.file_id),
        size_bytes=session.total_size_bytes,
        total_parts=session.total_parts,
    )


def _by_idempotency_key(owner, key):
    return (
        UploadSession.objects.select_related("file")
        .filter(owner=owner, idempotency_key=key)
        .first()
    )


def _same_request(session, spec):
    """A key reused for a different upload (any field differs) is refused, not mixed."""
    stored = {
        "filename": session.file.original_filename,
        "size_bytes": session.total_size_bytes,
        "content_type": session.file.content_type,
        "chunk_size_bytes": session.chunk_size_bytes,
    }
    differs = sorted(field for field, value in stored.items() if spec[field] != value)
    if differs:
        raise Conflict(
            f"idempotency_key was already used for another request (its {', '.join(differs)} "
            f"differed: {', '.join(f'{field}={stored[field]!r}' for field in differs)})",
            code="idempotency_key_reused",
        )
    return session


def _validated(data):
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object", code="invalid_json")
    size_bytes = _size(data.get("size_bytes"))
    return {
        "filename": _text(data.get("filename"), "filename", max_chars=MAX_NAME_CHARS),
        "content_type": _content_type(data.get("content_type", DEFAULT_CONTENT_TYPE)),
        "size_bytes": size_bytes,
        "chunk_size_bytes": _chunk_size(data.get("chunk_size_bytes"), size_bytes),
        "idempotency_key": _idempotency_key(data.get("idempotency_key")),
    }


def _text(value, field, *, max_chars):
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{field} must be a non-empty string", code="invalid_" + field)
    if len(value) > max_chars:
        raise BadRequest(f"{field} is longer than {max_chars} characters", code="invalid_" + field)
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in value):
        raise BadRequest(f"{field} contains control characters", code="invalid_" + field)
    return value


def _content_type(value):
    value = _text(value, "content_type", max_chars=MAX_NAME_CHARS)
    kind, slash, subtype = value.partition("/")
    if not slash or not kind.strip() or not subtype.strip() or " " in kind:
        raise BadRequest("content_type must look like 'type/subtype'", code="invalid_content_type")
    return value


def _integer(value, field):
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{field} must be an integer", code="invalid_" + field)
    return value


def _size(value):
    size = _integer(value, "size_bytes")
    if size < 1:
        raise BadRequest("size_bytes must be at least 1", code="invalid_size_bytes")
    if size > settings.PORTAL_MAX_FILE_SIZE:
        raise TooLarge(
            f"size_bytes {size} is over the limit of {settings.PORTAL_MAX_FILE_SIZE} bytes",
            code="file_too_large",
        )
    return size


def _chunk_size(value, size_bytes):
    """The requested part size (bounded), or the default, grown only to stay within
    ``MAX_PARTS`` parts (a requested size that needs more is refused)."""
    low, high = settings.PORTAL_CHUNK_SIZE_MIN, settings.PORTAL_CHUNK_SIZE_MAX
    if value is None:
        default = min(max(settings.PORTAL_CHUNK_SIZE, low), high)
        return min(max(default, math.ceil(size_bytes / MAX_PARTS)), high)
    chunk = _integer(value, "chunk_size_bytes")
    if not low <= chunk <= high:
        raise BadRequest(
            f"chunk_size_bytes must be between {low} and {high}", code="invalid_chunk_size_bytes"
        )
    if part_count(size_bytes, chunk) > MAX_PARTS:
        raise BadRequest(
            f"chunk_size_bytes {chunk} would need more than {MAX_PARTS} parts",
            code="invalid_chunk_size_bytes",
        )
    return chunk


def _idempotency_key(value):
    if value is None or value == "":
        return ""
    return _text(value, "idempotency_key", max_chars=MAX_IDEMPOTENCY_KEY_CHARS)


def get_session(owner, session_id, *, for_part=False):
    """The owner's session with its file, or (``for_part``) only what the part path reads;
    else 404 (unknown, malformed id, or someone else's)."""
    try:
        pk = uuid.UUID(str(session_id))
    except ValueError:
        raise session_not_found() from None
    if for_part:
        session = part_sql.owned_session(pk, owner.pk)
    else:
        session = one_or_none(
            UploadSession.objects.filter(pk=pk, owner=owner).select_related("file")
        )
    if session is None:
        raise session_not_found()
    return session


def session_not_found():
    return NotFound("no such upload session", code="session_not_found")


def ensure_open(session, now=None):
    """409 or 410 unless ``session`` takes parts (marking an expired one failed is cleanup's
    job)."""
    if session.status == UploadSession.Status.FINALIZING:
        raise Conflict(
            "the upload session is being finalized; ask for its status with GET",
            code="session_finalizing",
        )
    if session.is_terminal:
        raise Gone(
            f"the upload session is {session.status}"
            + (f": {session.failure_reason}" if session.failure_reason else ""),
            code=f"session_{session.status}",
        )
    if session.expires_at <= (now or timezone.now()):
        raise Gone("the upload session has expired", code="session_expired")


def abort_session(owner, session_id):
    """DELETE: an open session becomes ``aborted`` and its file ``failed``; parts are left
    for cleanup. 409 for a complete session, 410 for a failed one."""
    session = get_session(owner, session_id)
    aborted = close_sessions(
        [(session.pk, session.file_id)], UploadSession.Status.ABORTED, "aborted by the client"
    )
    if aborted:
        log_event(
            logger,
            "session.aborted",
            "upload session aborted by the client",
            session_id=str(session.pk),
            file_id=str(session.file_id),
        )
        return
    session.refresh_from_db(fields=["status", "failure_reason"])
    if session.status == UploadSession.Status.COMPLETE:
        raise Conflict("the upload session is complete", code="session_complete")
    if session.status in (UploadSession.Status.FAILED, UploadSession.Status.FINALIZING):
        ensure_open(session)


def close_sessions(sessions, status, reason, now=None, among=UploadSession.OPEN_STATUSES):
    """End those of ``sessions`` (``(pk, file pk)`` pairs) still in ``among`` as ``status``
    and fail their files: how many ended. Conditional, so a session that moved on keeps its
    state; several sessions must come locked and re-checked (their files fail together)."""
    now = now or timezone.now()
    with transaction.atomic(savepoint=False):
        ended = UploadSession.objects.filter(
            pk__in=[pk for pk, _ in sessions], status__in=among
        ).update(
            status=status,
            failure_reason=reason[:255],
            finished_at=now,
            updated_at=now,
            assembly_lease_until=None,
        )
        if ended:
            IngestFile.objects.filter(pk__in=[file_pk for _, file_pk in sessions]).update(
                status=IngestFile.Status.FAILED, updated_at=now
            )
    return ended


def file_payload(file):
    return {
        "id": str(file.id),
        "filename": file.original_filename,
        "content_type": file.content_type,
        "size_bytes": file.size_bytes,
        "sha256": file.sha256,
        "status": file.status,
        "stored_at": file.stored_at.isoformat() if file.stored_at else None,
    }


def session_payload(session):
    """What session creation answers."""
    return {
        "id": str(session.id),
        "status": session.status,
        "filename": session.file.original_filename,
        "size_bytes": session.total_size_bytes,
        "chunk_size_bytes": session.chunk_size_bytes,
        "total_parts": session.total_parts,
        "expires_at": session.expires_at.isoformat(),
    }


def session_status(owner, session_id):
    """GET: progress, the received parts as compact ranges, and the file once complete."""
    session = get_session(owner, session_id)
    numbers = session.parts.order_by("part_number").values_list("part_number", flat=True)
    body = {
        **session_payload(session),
        "completed_parts": session.completed_parts,
        "received_parts": compact_ranges(numbers.iterator()),
        "bytes_received": session.bytes_received,
    }
    if session.failure_reason:
        body["failure_reason"] = session.failure_reason
    if session.status == UploadSession.Status.FINALIZING:
        body["assembly"] = {
            "assembled_bytes": session.assembled_bytes,
            "total_bytes": session.total_size_bytes,
            "attempts": session.assembly_attempts,
        }
    if session.status == UploadSession.Status.COMPLETE:
        body["file"] = file_payload(session.file)
    return body
