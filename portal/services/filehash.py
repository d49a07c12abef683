"""The whole file's sha256 while the parts arrive, so that finalize need not read the file
back (docs/design.md, "How an upload works", step 3)."""

import logging
import time
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from portal import storage
from portal.parts import bytes_in_parts
from portal.services import part_sql
from portal.storage import sha256state
from portal.storage.sha256state import ResumableSha256

logger = logging.getLogger(__name__)

# What one request catches up at most: bytes read back, and seconds (well inside the claim).
CATCH_UP_BYTES = 128 * 1024 * 1024
CATCH_UP_SECONDS = 15
# How long a catch-up holds the session before another request may take over.
CLAIM_SECONDS = 60
# Parts one look returns at most (a run is bounded by ``CATCH_UP_BYTES`` as it is hashed).
RUN_PARTS = 16


def applies(session):
    """Whether this session's file hash is saved: where finalize will not read the parts."""
    chosen = storage.backend()
    return chosen.assembles_in_place or chosen.copies_parts(
        session.chunk_size_bytes, session.total_parts
    )


def for_part(session, part_number):
    """The hash to feed part ``part_number`` when the saved hash needs exactly it, else None."""
    if session.hashed_parts != part_number - 1 or not applies(session):
        return None
    if part_number == 1:
        return ResumableSha256() if sha256state.available() else None
    return _resume(session, session.hashed_parts)


def saved_fields(locked, part_number, file_hash):
    """The fields saving ``file_hash`` (fed ``part_number``) if the locked row still waits."""
    if file_hash is None or locked.hashed_parts != part_number - 1:
        return {}
    if file_hash.length != hashed_bytes(locked, part_number):
        return {}
    return {"hashed_parts": part_number, "hash_state": file_hash.state()}


def catch_up(session_pk):
    """Extend the saved hash over parts that arrived before their turn, within the budgets.
    Never raises: the caller's part is recorded, and what is not hashed is read at finalize."""
    try:
        _catch_up(session_pk, time.monotonic() + CATCH_UP_SECONDS)
    except Exception:
        logger.warning(
            "catching up the file's hash failed; finalize will read the parts",
            exc_info=True,
            extra={"session_id": str(session_pk)},
        )


def _catch_up(session_pk, deadline):
    """Look, claim, hash the run, move the hash on (letting go of the claim), look again."""
    read = 0
    found = _next_run(session_pk)
    while found and read < CATCH_UP_BYTES and time.monotonic() < deadline:
        session, held, run = found
        if held:
            return  # the holder looks again after letting go, and will see these parts
        claim = _claim(session_pk, run[0][0])
        if claim is None:
            return
        try:
            hashed, size, stuck = _hash_run(session, run, CATCH_UP_BYTES - read, deadline)
            with transaction.atomic():  # False when the claim ran out and another took over
                moved = hashed is not None and part_sql.move_hash(session_pk, *hashed, claim)
        except BaseException:
            _release(session_pk, claim)  # others need not wait for the claim to run out
            raise
        read += size
        if not moved:
            _release(session_pk, claim)
        if stuck:
            return
        found = _next_run(session_pk)


def for_assembly(session):
    """``(hash, parts it covers)`` for finalize: the saved hash, or ``(None, 0)``."""
    resumed = _resume(session, session.hashed_parts) if session.hashed_parts else None
    return (resumed, session.hashed_parts) if resumed is not None else (None, 0)


def hashed_bytes(session, parts):
    return bytes_in_parts(parts, session.chunk_size_bytes, session.total_size_bytes)


def _resume(session, parts):
    return ResumableSha256.resume(session.hash_state, hashed_bytes(session, parts))


def _next_run(session_pk):
    """``(session, held, [(part number, Source), ...])``: the parts the saved hash needs
    next without a gap, and whether another request holds the claim; or None."""
    found = part_sql.waiting_parts(session_pk, RUN_PARTS, timezone.now())
    if found is None:
        return None
    session, held, parts = found
    run = []
    for number, part in enumerate(parts, start=session.hashed_parts + 1):
        if part.part_number != number:
            break
        source = storage.part_source(
            number, part.size_bytes, part.sha256, part.temp_key, part.temp_offset
        )
        run.append((number, source))
    return (session, held, run) if run else None


def _hash_run(session, run, budget, deadline):
    """``(hashed, bytes read, stuck)``: ``hashed`` is ``(first, last part, state)`` or None;
    ``stuck`` when a part cannot be hashed here (finalize then reads or fails it)."""
    file_hash = for_part(session, run[0][0])
    if file_hash is None:
        return None, 0, True
    read, hashed = 0, None
    for number, source in run:
        if read >= budget or time.monotonic() >= deadline:
            return hashed, read, False
        try:
            storage.backend().hash_part(source, file_hash)
        except (storage.SourceMismatch, storage.StorageUnavailable):
            return hashed, read + source.size, True
        read += source.size
        if file_hash.length != hashed_bytes(session, number):
            return hashed, read, True
        hashed = run[0][0], number, file_hash.state()
    return hashed, read, False


def _claim(session_pk, number):
    """The claim's token (when it runs out) while the hash waits for part ``number``, or
    None (another holder, or the hash moved on)."""
    now = timezone.now()
    until = now + timedelta(seconds=CLAIM_SECONDS)
    with transaction.atomic():
        taken = part_sql.claim_hash(session_pk, number, now, until)
    return until if taken else None


def _release(session_pk, claim):
    """Let go of the claim, unless it ran out and another request holds it now."""
    with transaction.atomic():
        part_sql.release_hash(session_pk, claim)
