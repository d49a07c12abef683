"""Storing a part, for the JSON API's PUT and the tus PATCH alike: lock its range, check the
session, write, record. The session's row is locked only to record, so the database is
never locked while bytes travel (docs/design.md, "How an upload works")."""

import hashlib
import logging
from contextlib import ExitStack

from django.db import transaction
from django.utils import timezone

from portal import storage
from portal.lookups import one_or_none
from portal.models import UploadPart, UploadSession
from portal.observability import log_event
from portal.parts import part_offset, part_size
from portal.services import filehash, guards, part_sql
from portal.services.errors import ApiError, BadRequest, Conflict, LengthRequired, TooLarge
from portal.services.guards import storage_faults
from portal.services.sessions import ensure_open, get_session, session_not_found, ttl
from portal.services.tus_stream import Body

logger = logging.getLogger(__name__)


class Replayed(Exception):
    """The part is recorded already: nothing was inserted."""


def receive_part(owner, session_id, part_number, stream, content_length):
    """PUT: store part ``part_number`` read from ``stream``: ``(receipt, created)``, not
    created for a replay."""
    session = get_session(owner, session_id, for_part=True)
    ensure_open(session)
    expected = _expected_size(session, part_number, content_length)
    context = {"session_id": str(session.pk), "part_number": part_number}
    file_hash = filehash.for_part(session, part_number)
    body = Body(stream, expected + 1, [])  # a byte more: a longer body is refused, not cut
    with ExitStack() as held:
        with storage_faults("storing a part", **context):
            guards.ensure_room("temp", expected)
            place, state = claim_range(held, session, part_number, expected, _in_progress)
            try:
                if state == "open":
                    stored = write(session, part_number, body, expected, place, file_hash)
                else:  # recorded (a replay, compared below) or closed (refused below)
                    stored = storage.hash_only(body, max_bytes=expected)
            except storage.TooLarge:
                raise TooLarge(
                    f"part {part_number} has more than {expected} bytes", code="part_too_large"
                ) from None
        try:
            if stored.size != expected:
                raise BadRequest(
                    _cut_short(part_number, stored.size, expected, body), code="incomplete_part"
                )
            with transaction.atomic():
                record(session, [(part_number, stored, file_hash)], session_not_found)
                counted = part_sql.counted_session(session.pk)
        except Replayed:
            discard(stored, place)  # nothing of it is recorded
            return _replay(session.pk, part_number, stored)
        except ApiError:
            discard(stored, place)  # refused before or inside the rolled-back transaction
            raise
    if counted.hash_next_in and filehash.applies(session):
        filehash.catch_up(session.pk)
    log_event(
        logger,
        "part.received",
        "part stored",
        session_id=str(session.pk),
        part_number=part_number,
        size_bytes=stored.size,
    )
    return _receipt(counted, part_number, stored.sha256), True


def claim_range(held, session, number, size, busy):
    """Lock: part ``number``'s range of its session's file, held in ``held`` until the part is
    recorded (None where parts are objects of their own; ``busy()`` while another request
    holds it). Check, under that lock: ``(range, "open" | "recorded" | "closed")``."""
    offset = part_offset(number, session.chunk_size_bytes)
    try:
        place = held.enter_context(storage.backend().part_range(session.pk, offset, size))
    except storage.RangeBusy:
        raise busy() from None
    if place is None:
        return None, "open"  # the unique constraint settles a race
    status, recorded = part_sql.range_state(session.pk, number)
    if recorded:
        return place, "recorded"
    if status not in UploadSession.OPEN_STATUSES:
        place.abandon()  # a file this request made goes: nothing can be recorded in it
        return place, "closed"
    return place, "open"


def write(session, number, source, size, place, file_hash, *, own_hash=True):
    """Write: the part's ``StoredObject``, in its range or (``place`` None) a temp object."""
    if place is not None:
        return place.write(source, max_bytes=size, file_hash=file_hash, own_hash=own_hash)
    return storage.write_temp_part(
        source,
        session_id=session.pk,
        part_number=number,
        max_bytes=size,
        file_hash=file_hash,
        for_copy=filehash.applies(session),
    )


def record(session, parts, missing, now=None):
    """Record, in the caller's transaction: insert and count ``parts`` (``[(number,
    StoredObject, file hash or None)]``); each count is a conditional UPDATE that holds the
    session's row until the commit and saves the file hash where it waits for that part.
    ``Replayed`` when a part is in already; 404, 409 or 410 when the session takes none.
    Returns the session's new ``expires_at``."""
    now = now or timezone.now()
    expires_at = now + ttl()
    for number, stored, file_hash in parts:
        if not part_sql.insert_part(session.pk, number, stored, now):
            raise Replayed(number)
        whole = file_hash is not None and file_hash.length == filehash.hashed_bytes(session, number)
        hashed = (number, file_hash.state()) if whole else None
        if not part_sql.count_part(
            session.pk, stored.size, expires_at=expires_at, now=now, hashed=hashed
        ):
            raise refusal(session.pk, missing, now)
    return expires_at


def refusal(session_pk, missing, now):
    """Why the session takes no part: its 404, 409 or 410."""
    session = one_or_none(UploadSession.objects.filter(pk=session_pk))
    if session is not None:
        ensure_open(session, now)  # closed or expired: raises
    return missing()


def discard(stored, place):
    """What is known not to be recorded goes. A failure that may have committed keeps it:
    the sweep, the part's next upload or the session's end takes it then."""
    if stored.offset is not None:
        place.release()
    elif stored.key:
        storage.delete_temp([stored.key])


def _in_progress():
    return Conflict(
        "a part is being uploaded by another request; retry once it ended",
        code="part_in_progress",
    )


def _cut_short(number, size, expected, body):
    if body.broken and body.broken != Body.ENDED:
        return f"part {number}: the request body broke off ({body.broken})"
    return f"part {number} ended after {size} of {expected} bytes"


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
    if declared != expected:
        refused, code = (
            (TooLarge, "part_too_large")
            if declared > expected
            else (BadRequest, "part_size_mismatch")
        )
        raise refused(
            f"part {part_number} must be {expected} bytes, Content-Length says {declared}",
            code=code,
        )
    return expected


def _receipt(session, part_number, sha256):
    return {
        "part_number": part_number,
        "size_bytes": part_size(part_number, session.chunk_size_bytes, session.total_size_bytes),
        "sha256": sha256,
        "completed_parts": session.completed_parts,
        "total_parts": session.total_parts,
        "expires_at": session.expires_at.isoformat(),
    }


def _replay(session_pk, part_number, stored):
    """A replay of a recorded part answers as its first upload did, if its bytes are the
    same (and the session still takes parts)."""
    with transaction.atomic():
        locked = part_sql.lock_session(session_pk)
        if locked is None:
            raise session_not_found()
        ensure_open(locked)
    recorded = _recorded_sha256(session_pk, part_number)
    if recorded != stored.sha256:
        raise Conflict(
            f"part {part_number} was already stored with different bytes "
            f"(sha256 {recorded or 'unknown: its bytes are gone'})",
            code="part_conflict",
        )
    return _receipt(locked, part_number, recorded), False


def _recorded_sha256(session_pk, part_number):
    """The recorded part's sha256; for a part tus wrote in place, whose bytes only the
    file's hash took (``PartRange.write``), that of its range as it lies ("" when gone)."""
    row = UploadPart.objects.filter(session_id=session_pk, part_number=part_number)
    sha256, size, key, offset = row.values_list(
        "sha256", "size_bytes", "temp_key", "temp_offset"
    ).get()
    if sha256:
        return sha256
    digest = hashlib.sha256()
    try:
        with storage_faults("reading a part", session_id=str(session_pk)):
            storage.backend().hash_part(
                storage.part_source(part_number, size, "", key, offset), digest
            )
    except storage.SourceMismatch:
        return ""
    return digest.hexdigest()
