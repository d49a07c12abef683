"""The cleanup service and ``portal_cleanup`` in-process: what each step does to rows and objects.

Objects are real (local files or the moto S3 server, per ``PORTAL_TEST_STORAGE`` or both
with ``any_storage``) and are checked by listing storage, never by trusting the rows.
"""

import io
import os
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal import storage
from portal.models import IngestFile, JobRun, OutboxEvent, UploadPart, UploadSession
from portal.services import chunks, cleanup, sessions
from portal.services.jobs import ABANDONED_AFTER
from tests import objects
from tests.seed import (
    PART_BYTES,
    Status,
    bulk_seed,
    make_session,
    put_untracked_temp,
    seed_owner,
    storage_listing,
    temp_keys_of,
)

pytestmark = pytest.mark.django_db
TTL = timedelta(hours=24)


def test_session_past_its_ttl_fails_with_its_file_and_loses_its_parts(any_storage, user):
    session = make_session(user, total_parts=3, received=[1, 2])
    assert len(storage_listing()["temp"]) == 2
    with time_machine.travel(session.expires_at + timedelta(minutes=1), tick=False):
        call_command("portal_cleanup")
    session.refresh_from_db()
    assert session.status == Status.FAILED
    assert session.failure_reason == "expired"
    assert session.finished_at is not None
    assert session.file.status == IngestFile.Status.FAILED
    assert storage_listing()["temp"] == []
    assert temp_keys_of(session) == []


def test_complete_session_loses_its_temp_parts_and_keeps_its_file(any_storage, user):
    session = make_session(user, status=Status.COMPLETE, total_parts=4)
    before = storage_listing()
    assert len(before["temp"]) == 4 and len(before["final"]) == 1
    call_command("portal_cleanup")
    after = storage_listing()
    assert after == {"temp": [], "final": before["final"]}
    assert not UploadPart.objects.filter(session=session).exclude(temp_key="").exists()
    session.refresh_from_db()
    assert session.status == Status.COMPLETE
    assert session.file.status == IngestFile.Status.STORED


def test_a_live_upload_whose_ttl_slides_is_not_expired(portal_storage, user):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        session, _ = sessions.create_session(
            user, {"filename": "a.bin", "size_bytes": 20, "chunk_size_bytes": 10}
        )
    with time_machine.travel(start + TTL - timedelta(hours=4), tick=False):
        chunks.receive_part(user, session.id, 1, io.BytesIO(b"a" * 10), "10")
    with time_machine.travel(start + TTL + timedelta(hours=1), tick=False):
        call_command("portal_cleanup")
    session.refresh_from_db()
    assert session.status == Status.IN_PROGRESS
    assert session.expires_at > start + TTL
    assert len(temp_keys_of(session)) == 1
    assert storage_listing()["temp"] == temp_keys_of(session)


def test_expiry_boundary_is_exact(portal_storage, user):
    now = timezone.now()
    gone = make_session(user, expires_at=now - timedelta(seconds=1))
    due_now = make_session(user, expires_at=now)
    alive = make_session(user, expires_at=now + timedelta(seconds=1))
    result = cleanup.cleanup_stale_sessions(cleanup.CleanupOptions(now=now))
    assert result.counts == {"sessions_expired": 1, "files_failed": 1}
    statuses = dict(UploadSession.objects.values_list("pk", "status"))
    assert statuses == {
        gone.pk: Status.FAILED,
        due_now.pk: Status.IN_PROGRESS,
        alive.pk: Status.IN_PROGRESS,
    }


def test_aborted_session_parts_are_reclaimed(portal_storage, user):
    session = make_session(user, total_parts=3)
    sessions.abort_session(user, session.id)
    assert len(storage_listing()["temp"]) == 3
    call_command("portal_cleanup")
    session.refresh_from_db()
    assert session.status == Status.ABORTED
    assert temp_keys_of(session) == []
    assert storage_listing()["temp"] == []


def test_open_sessions_keep_their_parts(portal_storage, user):
    live = make_session(user, total_parts=2)
    call_command("portal_cleanup")
    assert sorted(storage_listing()["temp"]) == sorted(temp_keys_of(live))


def test_prune_respects_retention_exactly(portal_storage, user, settings):
    now = timezone.now()
    retention = timedelta(days=settings.PORTAL_FAILED_SESSION_RETENTION_DAYS)
    outbox_retention = timedelta(days=settings.PORTAL_OUTBOX_RETENTION_DAYS)
    second = timedelta(seconds=1)
    at_limit = make_session(user, status=Status.FAILED, received=[], finished_at=now - retention)
    past = make_session(
        user, status=Status.FAILED, received=[], finished_at=now - retention - second
    )
    aborted = make_session(
        user, status=Status.ABORTED, received=[], finished_at=now - 2 * retention
    )
    complete = make_session(user, status=Status.COMPLETE, finished_at=now - 10 * retention)
    UploadPart.objects.filter(session=complete).update(temp_key="")
    tracking = make_session(
        user, status=Status.FAILED, total_parts=1, finished_at=now - 2 * retention
    )
    # A finalize that failed after writing the final object left it at the deterministic key.
    leftover = storage.write_final([b"partial"], file_id=past.file_id, now=past.file.created_at)
    events = {
        name: OutboxEvent.objects.create(
            event_type="file.uploaded",
            aggregate_id=name,
            payload={},
            idempotency_key=name,
            status=status,
            next_attempt_at=now,
            delivered_at=delivered_at,
        )
        for name, status, delivered_at in [
            ("kept", OutboxEvent.Status.DELIVERED, now - outbox_retention),
            ("pruned", OutboxEvent.Status.DELIVERED, now - outbox_retention - second),
            ("pending", OutboxEvent.Status.PENDING, None),
            ("failed", OutboxEvent.Status.FAILED, None),
        ]
    }
    OutboxEvent.objects.filter(pk=events["pending"].pk).update(
        created_at=now - 3 * outbox_retention
    )
    old_run = JobRun.objects.create(
        job="portal_dispatch", started_at=now - outbox_retention - second
    )
    new_run = JobRun.objects.create(job="portal_dispatch", started_at=now - outbox_retention)

    result = cleanup.prune_old_failed_sessions(cleanup.CleanupOptions(now=now))

    assert result.counts["sessions_pruned"] == 2
    assert result.counts["outbox_events_pruned"] == 1
    assert result.counts["job_runs_pruned"] == 1
    remaining = set(UploadSession.objects.values_list("pk", flat=True))
    assert remaining == {at_limit.pk, complete.pk, tracking.pk}
    assert not IngestFile.objects.filter(pk__in=[past.file_id, aborted.file_id]).exists()
    assert not objects.final_exists(leftover.key)
    assert objects.final_exists(complete.file.storage_key)
    assert temp_keys_of(tracking)  # still tracks an object: kept until orphans deletes it
    assert set(OutboxEvent.objects.values_list("aggregate_id", flat=True)) == {
        "kept",
        "pending",
        "failed",
    }
    assert set(JobRun.objects.values_list("pk", flat=True)) == {new_run.pk}
    assert old_run.pk not in set(JobRun.objects.values_list("pk", flat=True))


@pytest.mark.parametrize("dry_run", [False, True])
def test_prune_closes_runs_still_running_a_day_after_they_started(portal_storage, dry_run):
    now = timezone.now()
    second = timedelta(seconds=1)
    dead = JobRun.objects.create(job="portal_dispatch", started_at=now - ABANDONED_AFTER - second)
    young = JobRun.objects.create(job="portal_dispatch", started_at=now - ABANDONED_AFTER)
    done = JobRun.objects.create(
        job="portal_dispatch", started_at=now - 2 * ABANDONED_AFTER, outcome=JobRun.Outcome.OK
    )

    result = cleanup.prune_old_failed_sessions(cleanup.CleanupOptions(now=now, dry_run=dry_run))

    assert result.counts["job_runs_abandoned"] == 1
    outcomes = dict(JobRun.objects.values_list("pk", "outcome"))
    assert outcomes == {
        dead.pk: JobRun.Outcome.RUNNING if dry_run else JobRun.Outcome.ABANDONED,
        young.pk: JobRun.Outcome.RUNNING,
        done.pk: JobRun.Outcome.OK,
    }


def test_sweep_deletes_only_old_untracked_objects(portal_storage, user, settings):
    grace = timedelta(minutes=settings.PORTAL_ORPHAN_GRACE_MINUTES)
    now = timezone.now() + grace + timedelta(minutes=5)  # everything written so far is old
    tracked = make_session(user, total_parts=2)
    finished = make_session(user, status=Status.ABORTED, total_parts=1)
    old = put_untracked_temp(now - grace - timedelta(seconds=1))
    young = put_untracked_temp(now - grace + timedelta(minutes=1))
    result = cleanup.sweep_temp_storage(cleanup.CleanupOptions(now=now))
    assert result.counts["objects_deleted"] == 1
    listed = set(storage_listing()["temp"])
    assert old not in listed
    assert young in listed
    assert set(temp_keys_of(tracked)) <= listed
    assert set(temp_keys_of(finished)) <= listed  # tracked: the orphans step's business


def test_failed_deletion_keeps_the_key_and_the_next_run_retries(settings, data_dir, user):
    from tests.conftest import apply_storage

    apply_storage(settings, "local", data_dir)
    session = make_session(user, status=Status.ABORTED, total_parts=3)
    stuck = temp_keys_of(session)[0]
    path = storage.temp_storage().path(stuck)
    os.unlink(path)
    os.mkdir(path)  # unlink() of a directory fails: a storage error we can switch off

    result = cleanup.cleanup_orphan_temp_parts()
    assert result.failed == 1 and stuck in result.failures
    assert result.counts["objects_deleted"] == 2
    assert temp_keys_of(session) == [stuck]

    os.rmdir(path)
    again = cleanup.cleanup_orphan_temp_parts()
    assert again.failed == 0 and again.counts["objects_deleted"] == 1
    assert temp_keys_of(session) == []


def test_work_goes_in_batches_without_per_row_queries(portal_storage, user):
    owner = seed_owner()
    past = timezone.now() - timedelta(hours=1)
    bulk_seed(owner, n=60, parts_per_session=2, expires_at=past)
    bulk_seed(owner, n=5, parts_per_session=2)
    seen = []
    with CaptureQueriesContext(connection) as queries:
        stale = cleanup.cleanup_stale_sessions(
            cleanup.CleanupOptions(batch_size=20, on_batch=seen.append)
        )
        orphans = cleanup.cleanup_orphan_temp_parts(cleanup.CleanupOptions(batch_size=20))
    assert stale.counts["sessions_expired"] == 60 and stale.batches == 3
    assert orphans.counts["objects_deleted"] == 120
    assert len(seen) == 3
    # 60 sessions and 120 parts in batches of 20: a few statements per batch, none per row.
    assert len(queries) < 60
    assert UploadSession.objects.filter(status__in=UploadSession.OPEN_STATUSES).count() == 5
    assert UploadPart.objects.exclude(temp_key="").count() == 10
    assert len(storage_listing()["temp"]) == 10


def test_should_stop_ends_a_step_between_batches(portal_storage, user):
    bulk_seed(seed_owner(), n=30, parts_per_session=1, expires_at=timezone.now() - TTL)
    batches = []
    result = cleanup.cleanup_stale_sessions(
        cleanup.CleanupOptions(
            batch_size=10, should_stop=lambda: bool(batches), on_batch=batches.append
        )
    )
    assert result.stopped_early
    assert result.counts["sessions_expired"] == 10
    assert UploadSession.objects.filter(status=Status.FAILED).count() == 10


def test_max_seconds_bounds_a_step_called_on_its_own(portal_storage, user):
    """A step called directly (not through ``run_cleanup``) keeps its time budget too: with
    none left it stops before its first batch."""
    bulk_seed(seed_owner(), n=30, parts_per_session=1, expires_at=timezone.now() - TTL)
    result = cleanup.cleanup_stale_sessions(cleanup.CleanupOptions(batch_size=10, max_seconds=0))
    assert result.stopped_early
    assert result.counts["sessions_expired"] == 0
    assert UploadSession.objects.filter(status=Status.FAILED).count() == 0


def test_dry_run_service_counts_what_the_run_would_do(portal_storage, user):
    make_session(user, total_parts=2, expires_at=timezone.now() - timedelta(minutes=1))
    make_session(user, status=Status.COMPLETE, total_parts=3)
    before = storage_listing()
    results = {r.step: r for r in cleanup.run_cleanup(cleanup.CleanupOptions(dry_run=True))}
    assert results["stale"].counts["sessions_expired"] == 1
    # the expired session's 2 parts count too: the real run would expire it first
    assert results["orphans"].counts["objects_deleted"] == 5
    assert storage_listing() == before
    assert UploadSession.objects.filter(status=Status.FAILED).count() == 0


def test_part_bytes_are_what_the_seed_wrote(portal_storage, user):
    session = make_session(user, total_parts=1)
    assert b"".join(storage.iter_temp(temp_keys_of(session)[0])) == PART_BYTES


@pytest.mark.parametrize("batch_size", [1, 2, 3, 7])
def test_orphans_handle_sessions_larger_and_smaller_than_a_batch(portal_storage, batch_size):
    owner = seed_owner()
    bulk_seed(owner, n=3, status=Status.ABORTED, parts_per_session=5)
    bulk_seed(owner, n=4, status=Status.COMPLETE, parts_per_session=1)
    live = make_session(owner, total_parts=2)
    result = cleanup.cleanup_orphan_temp_parts(cleanup.CleanupOptions(batch_size=batch_size))
    assert result.counts["objects_deleted"] == 19
    assert result.counts["sessions"] == 7
    assert sorted(storage_listing()["temp"]) == sorted(temp_keys_of(live))
    assert UploadPart.objects.exclude(temp_key="").count() == 2
