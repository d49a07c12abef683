"""The invariants of docs/design.md as checks: each function returns the violations it finds.

One function per invariant, over the real database and storage as they are now::

    1 open_sessions_past_expiry        no init/in_progress session with expires_at past
    2 terminal_sessions_holding_temp   no temp object or temp_key of a terminal session
    3 untracked_old_temp_objects       no temp object older than the grace period untracked
    4 complete_sessions_without_file   every complete session's file stored, object there,
                                       sha256 right
    5 events_not_delivered             every file.uploaded event delivered at least once or
                                       failed; none dropped

Invariant 6 (kill any job, run it again, 1-5 hold) is what the crash tests do with these.
``lost_live_parts`` adds the other half of "nothing is lost": no part of an open session
points to an object that is gone (cleanup deleted something it must keep).
``check_all`` runs every check over one listing of the storage.

Temp keys name their session (``ab/<session hex>-<part>-<random>``, see
``portal.storage.new_temp_key``), which is how an object whose row was never written or
was already pruned is traced to its session. An object naming a session that no longer
exists belonged to a pruned, hence terminal, session: invariant 2 counts it (pass
``missing_session_is_violation=False`` for worlds seeded with random session ids).
"""

import hashlib
import random
import re
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from portal import storage
from portal.models import IngestFile, OutboxEvent, UploadPart, UploadSession
from tests import objects

TEMP_KEY = re.compile(r"^[0-9a-f]{2}/(?P<session>[0-9a-f]{32})-(?P<part>\d{6})-[0-9a-f]{12}$")
QUERY_CHUNK = 500


@dataclass(frozen=True)
class Violation:
    invariant: str
    subject: str
    detail: str

    def __str__(self):
        return f"[{self.invariant}] {self.subject}: {self.detail}"


def temp_listing() -> dict[str, datetime]:
    """Every temp object: key -> last modified."""
    return {item.key: item.modified_at for item in storage.list_temp()}


def final_keys() -> set[str]:
    final = storage.final_storage()
    listing = storage.list_objects(final)
    return {item.key for item in listing}


def session_of_key(key) -> uuid.UUID | None:
    """The session a temp key names: a part's own object, or a session's assembly file."""
    match = TEMP_KEY.match(key)
    return uuid.UUID(match["session"]) if match else storage.assembly_session(key)


def _chunks(items, size=QUERY_CHUNK):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _statuses(session_ids) -> dict:
    found = {}
    for chunk in _chunks(session_ids):
        found.update(UploadSession.objects.filter(pk__in=chunk).values_list("pk", "status"))
    return found


def _tracked(keys) -> set[str]:
    """Keys a part row points to, and assembly files of active sessions."""
    tracked = set()
    for chunk in _chunks(keys):
        tracked.update(
            UploadPart.objects.filter(temp_key__in=chunk).values_list("temp_key", flat=True)
        )
    owners = {key: storage.assembly_session(key) for key in keys}
    statuses = _statuses({owner for owner in owners.values() if owner is not None})
    active = UploadSession.ACTIVE_STATUSES
    tracked.update(key for key, owner in owners.items() if statuses.get(owner) in active)
    return tracked


# --- 1 -------------------------------------------------------------------------------------


def open_sessions_past_expiry(*, now=None) -> list[Violation]:
    """1. No session in ``init``/``in_progress`` has ``expires_at`` in the past."""
    now = now or timezone.now()
    rows = UploadSession.objects.filter(
        status__in=UploadSession.OPEN_STATUSES, expires_at__lt=now
    ).values_list("pk", "status", "expires_at")
    return [
        Violation("1", str(pk), f"{status} but expired at {expires_at.isoformat()}")
        for pk, status, expires_at in rows
    ]


# --- 2 -------------------------------------------------------------------------------------


def terminal_sessions_holding_temp(
    *, reported=(), listing=None, missing_session_is_violation=True
) -> list[Violation]:
    """2. No temp object belongs to a terminal session, no terminal session's part has a
    ``temp_key``, except keys whose deletion failed and was reported (``reported``)."""
    reported = set(reported)
    listing = temp_listing() if listing is None else listing
    violations = [
        Violation("2", key, f"part {number} of {status} session {session_id} keeps its temp_key")
        for key, number, session_id, status in UploadPart.objects.exclude(temp_key="")
        .filter(session__status__in=UploadSession.TERMINAL_STATUSES)
        .values_list("temp_key", "part_number", "session_id", "session__status")
        if key not in reported
    ]
    owners = {key: session_of_key(key) for key in listing}
    statuses = _statuses({sid for sid in owners.values() if sid is not None})
    for key, session_id in owners.items():
        if session_id is None or key in reported:
            continue
        status = statuses.get(session_id)
        if status in UploadSession.TERMINAL_STATUSES:
            violations.append(Violation("2", key, f"object of {status} session {session_id}"))
        elif status is None and missing_session_is_violation:
            violations.append(Violation("2", key, f"object of pruned session {session_id}"))
    return violations


# --- 3 -------------------------------------------------------------------------------------


def untracked_old_temp_objects(*, now=None, grace=None, listing=None) -> list[Violation]:
    """3. No temp object older than the grace period lacks a part row pointing to it."""
    now = now or timezone.now()
    if grace is None:
        grace = timedelta(minutes=settings.PORTAL_ORPHAN_GRACE_MINUTES)
    listing = temp_listing() if listing is None else listing
    old = [key for key, modified in listing.items() if modified < now - grace]
    tracked = _tracked(old)
    return [
        Violation("3", key, f"untracked since {listing[key].isoformat()}")
        for key in old
        if key not in tracked
    ]


# --- 4 -------------------------------------------------------------------------------------


def complete_sessions_without_file(*, verify=None, finals=None) -> list[Violation]:
    """4. Every complete session has a stored file whose object exists with its sha256.

    Existence is checked for all (one listing); the bytes are read and hashed for all
    when ``verify`` is None, else for a random sample of ``verify`` files.
    """
    finals = final_keys() if finals is None else finals
    rows = list(
        UploadSession.objects.filter(status=UploadSession.Status.COMPLETE).values_list(
            "pk", "file__status", "file__storage_key", "file__sha256", "file__size_bytes"
        )
    )
    violations, present = [], []
    for pk, status, key, sha256, size in rows:
        if status != IngestFile.Status.STORED:
            violations.append(Violation("4", str(pk), f"complete but its file is {status}"))
        elif not key or key not in finals:
            violations.append(Violation("4", str(pk), f"final object {key!r} is missing"))
        else:
            present.append((pk, key, sha256, size))
    if verify is not None and len(present) > verify:
        present = random.sample(present, verify)
    for pk, key, sha256, size in present:
        digest, length = hashlib.sha256(), 0
        for chunk in objects.iter_final(key):
            digest.update(chunk)
            length += len(chunk)
        if digest.hexdigest() != sha256 or length != size:
            violations.append(Violation("4", str(pk), f"final object {key} does not match"))
    return violations


# --- 5 -------------------------------------------------------------------------------------


def events_not_delivered(*, settled=True, runner_counts=None, expected=()) -> list[Violation]:
    """5. Every ``file.uploaded`` event is delivered at least once or ends ``failed``.

    - every stored file has its event (none was dropped or never written);
    - every id in ``expected`` still exists, or the runner received it (``runner_counts``:
      event id -> requests) before it was pruned;
    - ``settled``: no event is still ``pending``/``sending`` (a dispatch ran to the end);
    - with ``runner_counts``: every ``delivered`` event did reach the runner.
    """
    counts = runner_counts or {}
    events = {
        str(pk): (status, key)
        for pk, status, key in OutboxEvent.objects.filter(
            event_type=OutboxEvent.FILE_UPLOADED
        ).values_list("pk", "status", "idempotency_key")
    }
    keys = {key for _, key in events.values()}
    stored = IngestFile.objects.filter(status=IngestFile.Status.STORED).values_list("pk", flat=True)
    violations = [
        Violation("5", str(pk), "stored file without a file.uploaded event")
        for pk in stored
        if str(pk) not in keys
    ]
    violations += [
        Violation("5", str(event_id), "event dropped: gone and never received")
        for event_id in map(str, expected)
        if event_id not in events and not counts.get(event_id)
    ]
    for event_id, (status, _) in events.items():
        if settled and status not in (OutboxEvent.Status.DELIVERED, OutboxEvent.Status.FAILED):
            violations.append(Violation("5", event_id, f"still {status} after a full run"))
        delivered = status == OutboxEvent.Status.DELIVERED
        if runner_counts is not None and delivered and not counts.get(event_id):
            violations.append(Violation("5", event_id, "delivered but the runner never got it"))
    return violations


# --- nothing lost --------------------------------------------------------------------------


def lost_live_parts(*, listing=None) -> list[Violation]:
    """No part of an open session points to a temp object that is gone."""
    listing = temp_listing() if listing is None else listing
    rows = (
        UploadPart.objects.exclude(temp_key="")
        .filter(session__status__in=UploadSession.OPEN_STATUSES)
        .values_list("temp_key", "session_id", "part_number")
    )
    return [
        Violation("lost", key, f"part {number} of open session {session_id} lost its object")
        for key, session_id, number in rows
        if key not in listing
    ]


def check_all(
    *,
    now=None,
    reported=(),
    settled=False,
    runner_counts=None,
    expected_events=(),
    verify_files=None,
    missing_session_is_violation=True,
) -> list[Violation]:
    """Invariants 1-5 and ``lost_live_parts`` over one listing of the storage."""
    now = now or timezone.now()
    listing = temp_listing()
    return [
        *open_sessions_past_expiry(now=now),
        *terminal_sessions_holding_temp(
            reported=reported,
            listing=listing,
            missing_session_is_violation=missing_session_is_violation,
        ),
        *untracked_old_temp_objects(now=now, listing=listing),
        *complete_sessions_without_file(verify=verify_files),
        *events_not_delivered(
            settled=settled, runner_counts=runner_counts, expected=expected_events
        ),
        *lost_live_parts(listing=listing),
    ]


def summarize(violations) -> str:
    """``"0"`` or ``"3 (1: 2, lost: 1); first: ..."``: for a one-line report."""
    if not violations:
        return "0"
    by_invariant = Counter(v.invariant for v in violations)
    kinds = ", ".join(f"{name}: {count}" for name, count in sorted(by_invariant.items()))
    return f"{len(violations)} ({kinds}); first: {violations[0]}"
