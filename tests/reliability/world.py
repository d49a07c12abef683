"""A seeded world for the crash and outage trials: sessions in every state, real objects.

``seed_world(owner, scale)`` lays down, per unit of ``scale``, every kind of row and object
the cleanup steps and the dispatcher meet in production:

========================  =====  ===================================================
kind                      count  what a full cleanup run must do with it
========================  =====  ===================================================
live in_progress          10     nothing (2 parts each, objects kept)
live init                 4      nothing
young untracked object    5      nothing (a live upload's write not yet committed)
expired in_progress       30     ``stale`` fails it, ``orphans`` deletes its 2 objects
expired init              10     ``stale`` fails it
complete                  10     ``orphans`` deletes its 2 temp objects; its final
                                 object, stored file and pending event stay
failed / aborted (recent) 10/10  ``orphans`` deletes their 2 objects each
failed (past retention)   10     ``orphans`` deletes its object, ``prune`` the rows
aborted (past retention)  5      ``prune`` deletes the rows (no parts left)
old untracked object      20     ``sweep`` deletes it
old delivered event       10     ``prune`` deletes it
old job run               5      ``prune`` deletes it
========================  =====  ===================================================

Rows go in with ``bulk_create``, objects straight to the backend (files on disk with
their modification time set, or ``put_object`` on S3 at a travelled time), so a few
thousand sessions take seconds. The ids of what must survive are returned.
"""

import hashlib
import os
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import time_machine
from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import transaction
from django.utils import timezone

from portal import storage
from portal.models import IngestFile, JobRun, OutboxEvent, UploadPart, UploadSession
from portal.services.outbox import build_file_uploaded_payload
from tests.reliability.invariants import Violation

Status = UploadSession.Status
PART_BYTES = b"r" * 64
PART_SHA256 = hashlib.sha256(PART_BYTES).hexdigest()

UNIT = {
    "live_in_progress": 10,
    "live_init": 4,
    "young_untracked": 5,
    "expired_in_progress": 30,
    "expired_init": 10,
    "complete": 10,
    "failed_recent": 10,
    "aborted_recent": 10,
    "failed_old": 10,
    "aborted_old": 5,
    "old_untracked": 20,
    "old_delivered_events": 10,
    "old_job_runs": 5,
}


@dataclass
class Seeded:
    """What one ``seed_world`` call created that must still be there after any cleanup."""

    live_sessions: list = field(default_factory=list)
    complete_sessions: list = field(default_factory=list)
    pending_events: list = field(default_factory=list)
    sessions: int = 0
    objects: int = 0

    def extend(self, other):
        self.live_sessions += other.live_sessions
        self.complete_sessions += other.complete_sessions
        self.pending_events += other.pending_events
        self.sessions += other.sessions
        self.objects += other.objects


class ObjectWriter:
    """Writes temp and final objects straight to the backend, with a chosen age."""

    def __init__(self):
        self.temp = storage.temp_storage()
        self.final = storage.final_storage()
        self.local = isinstance(self.temp, FileSystemStorage)
        self.written = 0

    def put(self, which, key, data, modified_at=None):
        target = self.temp if which == "temp" else self.final
        self.written += 1
        if self.local:
            path = target.path(key)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as handle:
                handle.write(data)
            if modified_at is not None:
                os.utime(path, (modified_at.timestamp(), modified_at.timestamp()))
            return
        client = target.connection.meta.client
        put = {"Bucket": target.bucket_name, "Key": target._normalize_name(key), "Body": data}
        if modified_at is None:
            client.put_object(**put)
            return
        # moto runs in this process: its LastModified follows time-machine.
        with time_machine.travel(modified_at, tick=False):
            client.put_object(**put)


class _Rows:
    """Rows of one seeding call, written together in one transaction."""

    def __init__(self, owner, writer, now):
        self.owner, self.writer, self.now = owner, writer, now
        self.files, self.sessions, self.parts, self.events, self.job_runs = [], [], [], [], []

    def session(self, status, *, parts, total_parts=None, expires_at=None, finished_at=None):
        total_parts = total_parts or max(parts, 2)
        file = IngestFile(
            id=uuid.uuid4(),
            original_filename="world.bin",
            size_bytes=len(PART_BYTES) * total_parts,
            uploaded_by=self.owner,
            status={
                Status.COMPLETE: IngestFile.Status.STORED,
                Status.FAILED: IngestFile.Status.FAILED,
                Status.ABORTED: IngestFile.Status.FAILED,
            }.get(status, IngestFile.Status.UPLOADING),
        )
        terminal = status in UploadSession.TERMINAL_STATUSES
        session = UploadSession(
            id=uuid.uuid4(),
            file=file,
            owner=self.owner,
            status=status,
            chunk_size_bytes=len(PART_BYTES),
            total_size_bytes=len(PART_BYTES) * total_parts,
            total_parts=total_parts,
            bytes_received=len(PART_BYTES) * parts,
            completed_parts=parts,
            expires_at=expires_at or self.now + timedelta(hours=6),
            failure_reason={Status.FAILED: "seeded failure", Status.ABORTED: "aborted"}.get(
                status, ""
            ),
            finished_at=(finished_at or self.now) if terminal else None,
        )
        for number in range(1, parts + 1):
            key = storage.new_temp_key(session.id, number)
            self.writer.put("temp", key, PART_BYTES)
            self.parts.append(
                UploadPart(
                    session=session,
                    part_number=number,
                    size_bytes=len(PART_BYTES),
                    sha256=PART_SHA256,
                    temp_key=key,
                )
            )
        if status == Status.COMPLETE:
            self._store(file, session)
        self.files.append(file)
        self.sessions.append(session)
        return session

    def _store(self, file, session):
        """The final object, the stored file and its pending event, as finalize leaves them."""
        data = file.id.bytes * (session.total_size_bytes // 16)
        key = storage.new_final_key(file.id, now=self.now)
        self.writer.put("final", key, data)
        file.size_bytes = len(data)
        file.sha256 = hashlib.sha256(data).hexdigest()
        file.storage_key = key
        file.stored_at = self.now
        self.event(file)

    def event(self, file=None, *, delivered_at=None):
        event_id = uuid.uuid4()
        if file is not None:
            payload = build_file_uploaded_payload(file, event_id=event_id, occurred_at=self.now)
            key = str(file.id)
        else:
            key = str(uuid.uuid4())
            payload = {"event_type": OutboxEvent.FILE_UPLOADED, "event_id": str(event_id)}
        delivered = delivered_at is not None
        self.events.append(
            OutboxEvent(
                id=event_id,
                event_type=OutboxEvent.FILE_UPLOADED,
                aggregate_id=key,
                idempotency_key=key,
                payload=payload,
                status=OutboxEvent.Status.DELIVERED if delivered else OutboxEvent.Status.PENDING,
                attempts=1 if delivered else 0,
                next_attempt_at=delivered_at or self.now,
                delivered_at=delivered_at,
            )
        )
        return event_id

    def save(self):
        with transaction.atomic():
            IngestFile.objects.bulk_create(self.files, batch_size=500)
            UploadSession.objects.bulk_create(self.sessions, batch_size=500)
            UploadPart.objects.bulk_create(self.parts, batch_size=500)
            OutboxEvent.objects.bulk_create(self.events, batch_size=500)
            JobRun.objects.bulk_create(self.job_runs, batch_size=500)


def seed_world(owner, scale=1, *, unit=None):
    """Seed ``scale`` units of every kind (see the module docstring); returns ``Seeded``."""
    unit = {**UNIT, **(unit or {})}
    now = timezone.now()
    past = now - timedelta(minutes=5)
    grace = timedelta(minutes=settings.PORTAL_ORPHAN_GRACE_MINUTES)
    retention = timedelta(days=settings.PORTAL_FAILED_SESSION_RETENTION_DAYS)
    long_ago = now - retention - timedelta(days=1)
    writer = ObjectWriter()
    rows = _Rows(owner, writer, now)
    seeded = Seeded()

    def many(kind, make):
        return [make() for _ in range(unit[kind] * scale)]

    live = many("live_in_progress", lambda: rows.session(Status.IN_PROGRESS, parts=2))
    live += many("live_init", lambda: rows.session(Status.INIT, parts=0))
    for index in range(unit["young_untracked"] * scale):
        # A live upload's object whose row is not committed yet: younger than the grace.
        owner_session = live[index % len(live)]
        writer.put("temp", storage.new_temp_key(owner_session.id, 1), PART_BYTES)
    many("expired_in_progress", lambda: rows.session(Status.IN_PROGRESS, parts=2, expires_at=past))
    many("expired_init", lambda: rows.session(Status.INIT, parts=0, expires_at=past))
    complete = many("complete", lambda: rows.session(Status.COMPLETE, parts=2))
    many("failed_recent", lambda: rows.session(Status.FAILED, parts=2))
    many("aborted_recent", lambda: rows.session(Status.ABORTED, parts=2))
    many("failed_old", lambda: rows.session(Status.FAILED, parts=1, finished_at=long_ago))
    many("aborted_old", lambda: rows.session(Status.ABORTED, parts=0, finished_at=long_ago))
    old = now - grace - timedelta(minutes=30)
    for _ in range(unit["old_untracked"] * scale):
        writer.put("temp", storage.new_temp_key(uuid.uuid4(), 1), PART_BYTES, modified_at=old)
    outbox_retention = timedelta(days=settings.PORTAL_OUTBOX_RETENTION_DAYS)
    for _ in range(unit["old_delivered_events"] * scale):
        rows.event(delivered_at=now - outbox_retention - timedelta(days=1))
    for _ in range(unit["old_job_runs"] * scale):
        started = now - outbox_retention - timedelta(days=2)
        rows.job_runs.append(
            JobRun(job="portal_cleanup", started_at=started, finished_at=started, outcome="ok")
        )
    rows.save()
    seeded.live_sessions = [session.id for session in live]
    seeded.complete_sessions = [session.id for session in complete]
    seeded.pending_events = [e.id for e in rows.events if e.status == OutboxEvent.Status.PENDING]
    seeded.sessions = len(rows.sessions)
    seeded.objects = writer.written
    return seeded


def missing_survivors(live, complete):
    """Sessions that must outlive any cleanup: open ones not due, and complete ones."""
    violations = []
    for ids, statuses, name in (
        (live, UploadSession.OPEN_STATUSES, "live"),
        (complete, (UploadSession.Status.COMPLETE,), "complete"),
    ):
        found = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            found.update(
                UploadSession.objects.filter(pk__in=chunk, status__in=statuses).values_list(
                    "pk", flat=True
                )
            )
        violations += [
            Violation("lost", str(pk), f"{name} session gone or changed")
            for pk in ids
            if pk not in found
        ]
    return violations


def seed_open_sessions(owner, n, *, expires_at, parts=1, total_parts=2):
    """``n`` in_progress sessions of ``owner`` with ``parts`` of ``total_parts`` received."""
    rows = _Rows(owner, ObjectWriter(), timezone.now())
    sessions = [
        rows.session(
            Status.IN_PROGRESS, parts=parts, total_parts=total_parts, expires_at=expires_at
        )
        for _ in range(n)
    ]
    rows.save()
    return [session.id for session in sessions]


def seed_events(n):
    """``n`` pending ``file.uploaded`` events, due now (no files: the dispatcher's backlog)."""
    rows = _Rows(None, None, timezone.now())
    ids = [rows.event() for _ in range(n)]
    rows.save()
    return ids
