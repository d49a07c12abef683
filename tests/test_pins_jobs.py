"""Pins for the jobs area (issue #31): the cleanup steps and job runs; the outbox, HTTP
client and gate: ``test_pins_jobs_outbox.py``; the commands: ``test_pins_jobs_commands.py``
and ``test_pins_jobs_upload.py``."""

import logging
import os
from datetime import timedelta

import pytest
from django.utils import timezone

from portal import storage
from portal.models import JobRun, OutboxEvent, TusUpload, UploadSession
from portal.services import cleanup, jobs
from tests.conftest import apply_storage
from tests.log_helpers import events_named
from tests.seed import (
    Status,
    bulk_seed,
    make_session,
    put_untracked_temp,
    seed_owner,
    storage_listing,
    temp_keys_of,
)
from tests.storage_helpers import multipart_ids, start_multipart

pytestmark = pytest.mark.django_db
SECOND = timedelta(seconds=1)


@pytest.fixture
def owner(db):
    return seed_owner("pins-owner")


def break_deletion(key):
    """A local temp object whose deletion fails (unlink() of a directory)."""
    path = storage.temp_storage().path(key)
    os.unlink(path)
    os.mkdir(path)


def test_a_step_that_stops_early_ends_the_run_as_partial(portal_storage):
    bulk_seed(seed_owner(), n=3, parts_per_session=1, expires_at=timezone.now() - SECOND)
    batches = []
    options = cleanup.CleanupOptions(
        batch_size=1, should_stop=lambda: bool(batches), on_batch=batches.append
    )
    report = cleanup.run_cleanup_job(options)
    assert list(report.summary["steps"]) == ["stale"]
    assert report.summary["stopped_early"] is True
    assert report.summary["outcome"] == "partial"
    assert report.exit_code == 0
    [run] = JobRun.objects.filter(job="portal_cleanup")
    assert run.outcome == JobRun.Outcome.PARTIAL
    assert run.counts == {"stale": {"sessions_expired": 1, "files_failed": 1}}


def test_max_seconds_keeps_the_callers_own_stop(portal_storage):
    bulk_seed(seed_owner(), n=2, parts_per_session=1, expires_at=timezone.now() - SECOND)
    options = cleanup.CleanupOptions(max_seconds=3600, should_stop=lambda: True)
    [result] = cleanup.run_cleanup(options)
    assert result.stopped_early and result.counts["sessions_expired"] == 0


def test_a_batch_size_below_1_is_refused(portal_storage):
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        cleanup.cleanup_stale_sessions(cleanup.CleanupOptions(batch_size=-1))


def test_a_dry_run_records_no_job_run(portal_storage):
    report = cleanup.run_cleanup_job(cleanup.CleanupOptions(dry_run=True))
    assert report.summary["outcome"] == "ok" and report.summary["dry_run"] is True
    assert not JobRun.objects.exists()


def test_cleanup_closes_its_own_dead_runs_only(portal_storage):
    dead = JobRun.objects.create(job="portal_cleanup", started_at=timezone.now())
    other = JobRun.objects.create(job="portal_dispatch", started_at=timezone.now())
    report = cleanup.run_cleanup_job(cleanup.CleanupOptions(steps=("stale",)))
    assert report.summary["abandoned_runs_closed"] == 1
    outcomes = dict(JobRun.objects.values_list("pk", "outcome"))
    mine = JobRun.objects.exclude(pk__in=[dead.pk, other.pk]).get()
    assert outcomes == {
        dead.pk: JobRun.Outcome.ABANDONED,
        other.pk: JobRun.Outcome.RUNNING,
        mine.pk: JobRun.Outcome.OK,
    }


def test_failed_deletions_warn_count_requests_and_keep_twenty_reasons(
    settings, data_dir, owner, caplog
):
    apply_storage(settings, "local", data_dir)
    session = make_session(owner, status=Status.ABORTED, total_parts=25)
    for key in temp_keys_of(session):
        break_deletion(key)
    caplog.set_level(logging.INFO, logger="portal")
    report = cleanup.run_cleanup_job(cleanup.CleanupOptions(steps=("orphans",), batch_size=10))
    step = report.summary["steps"]["orphans"]
    assert step["failed"] == 25 and len(step["failures"]) == 20
    assert step["counts"]["objects_deleted"] == 0
    assert step["batches"] == 3
    assert report.exit_code == 1 and "25 deletion(s) failed" in report.problem
    [record] = events_named(caplog, "cleanup.step")
    assert record.levelno == logging.WARNING and record.failed == 25
    [finished] = events_named(caplog, "cleanup.finished")
    assert finished.levelno == logging.WARNING and finished.outcome == "partial"


def test_a_clean_step_logs_at_info(portal_storage, caplog):
    caplog.set_level(logging.INFO, logger="portal")
    cleanup.run_cleanup(cleanup.CleanupOptions(steps=("stale",)))
    [record] = events_named(caplog, "cleanup.step")
    assert record.levelno == logging.INFO and record.failed == 0


def test_orphans_dry_run_counts_sessions_expired_before_now_only(portal_storage, owner):
    now = timezone.now()
    make_session(owner, total_parts=2, expires_at=now - SECOND)
    make_session(owner, total_parts=3, expires_at=now)
    options = cleanup.CleanupOptions(now=now, dry_run=True)
    orphans = cleanup.cleanup_orphan_temp_parts(options)
    assert orphans.counts["objects_deleted"] == 2 and orphans.counts["sessions"] == 1
    stale = cleanup.cleanup_stale_sessions(options)
    assert stale.counts == {"sessions_expired": 1, "files_failed": 1}
    assert len(storage_listing()["temp"]) == 5


def test_orphans_leave_open_sessions_parts_in_a_mixed_batch(portal_storage, owner):
    live = make_session(owner, total_parts=2)
    done = make_session(owner, status=Status.ABORTED, total_parts=2)
    result = cleanup.cleanup_orphan_temp_parts(cleanup.CleanupOptions(batch_size=100))
    assert result.counts["objects_deleted"] == 2
    assert temp_keys_of(done) == []
    assert sorted(storage_listing()["temp"]) == sorted(temp_keys_of(live))


def test_job_runs_go_by_the_outbox_retention_not_the_sessions(portal_storage, settings):
    settings.PORTAL_FAILED_SESSION_RETENTION_DAYS = 1
    settings.PORTAL_OUTBOX_RETENTION_DAYS = 30
    now = timezone.now()
    kept = JobRun.objects.create(
        job="portal_dispatch", started_at=now - timedelta(days=2), outcome="ok"
    )
    gone = JobRun.objects.create(
        job="portal_dispatch", started_at=now - timedelta(days=31), outcome="ok"
    )
    result = cleanup.prune_old_failed_sessions(cleanup.CleanupOptions(now=now))
    assert result.counts["job_runs_pruned"] == 1
    assert set(JobRun.objects.values_list("pk", flat=True)) == {kept.pk}
    assert gone.pk != kept.pk


@pytest.mark.parametrize("dry_run", [False, True])
def test_prune_that_stopped_early_leaves_events_and_runs(portal_storage, owner, settings, dry_run):
    now = timezone.now()
    old = now - timedelta(days=settings.PORTAL_FAILED_SESSION_RETENTION_DAYS + 1)
    for _ in range(2):
        make_session(owner, status=Status.FAILED, received=[], finished_at=old)
    OutboxEvent.objects.create(
        event_type="file.uploaded",
        aggregate_id="a",
        idempotency_key="a",
        payload={},
        status=OutboxEvent.Status.DELIVERED,
        next_attempt_at=now,
        delivered_at=now - timedelta(days=settings.PORTAL_OUTBOX_RETENTION_DAYS + 1),
    )
    batches = []
    result = cleanup.prune_old_failed_sessions(
        cleanup.CleanupOptions(
            now=now,
            batch_size=1,
            dry_run=dry_run,
            should_stop=lambda: bool(batches),
            on_batch=batches.append,
        )
    )
    assert result.stopped_early
    assert result.counts["sessions_pruned"] == 1
    assert result.counts["outbox_events_pruned"] == 0
    assert OutboxEvent.objects.count() == 1


def test_a_run_is_abandoned_after_a_day_not_an_hour(portal_storage):
    now = timezone.now()
    hours = {
        h: JobRun.objects.create(job="j", started_at=now - timedelta(hours=h)) for h in (2, 23, 25)
    }
    result = cleanup.prune_old_failed_sessions(cleanup.CleanupOptions(now=now))
    assert result.counts["job_runs_abandoned"] == 1
    outcomes = {h: JobRun.objects.get(pk=run.pk).outcome for h, run in hours.items()}
    assert outcomes == {2: "running", 23: "running", 25: "abandoned"}


def test_stale_logs_each_session_at_debug_and_a_dry_run_says_so(portal_storage, owner, caplog):
    now = timezone.now()
    session = make_session(owner, expires_at=now - SECOND)
    caplog.set_level(logging.DEBUG, logger="portal")
    cleanup.cleanup_stale_sessions(cleanup.CleanupOptions(now=now, dry_run=True))
    one, total = events_named(caplog, "session.expired")
    assert (one.session_id, one.file_id, one.dry_run) == (
        str(session.pk),
        str(session.file_id),
        True,
    )
    assert (total.count, total.dry_run) == (1, True)
    assert total.getMessage() == "would expire 1 upload sessions"
    caplog.clear()
    cleanup.cleanup_stale_sessions(cleanup.CleanupOptions(now=now))
    one, total = events_named(caplog, "session.expired")
    assert (one.session_id, one.dry_run, total.count, total.dry_run) == (
        str(session.pk),
        False,
        1,
        False,
    )


def test_sweep_dry_run_counts_and_deletes_nothing(portal_storage, settings):
    grace = timedelta(minutes=settings.PORTAL_ORPHAN_GRACE_MINUTES)
    now = timezone.now() + grace + timedelta(minutes=5)
    key = put_untracked_temp(now - grace - SECOND)
    result = cleanup.sweep_temp_storage(cleanup.CleanupOptions(now=now, dry_run=True))
    assert result.counts["objects_deleted"] == 1 and result.counts["objects_listed"] == 1
    assert storage_listing()["temp"] == [key]


def test_sweep_grace_is_in_minutes(portal_storage, settings):
    settings.PORTAL_ORPHAN_GRACE_MINUTES = 10
    now = timezone.now() + timedelta(minutes=20)
    young = put_untracked_temp(now - timedelta(minutes=9))
    result = cleanup.sweep_temp_storage(cleanup.CleanupOptions(now=now))
    assert result.counts["objects_deleted"] == 0
    assert storage_listing()["temp"] == [young]


def test_sweep_deletes_the_tus_tail_of_an_ended_session_only(portal_storage, owner, settings):
    grace = timedelta(minutes=settings.PORTAL_ORPHAN_GRACE_MINUTES)
    now = timezone.now() + grace + timedelta(minutes=5)
    live = make_session(owner, total_parts=1, received=[])
    ended = make_session(owner, status=Status.ABORTED, total_parts=1, received=[])
    tails = {}
    for session in (live, ended):
        tails[session.pk] = put_untracked_temp(now - grace - SECOND)
        TusUpload.objects.create(session=session, tail_key=tails[session.pk], tail_part=1)
    result = cleanup.sweep_temp_storage(cleanup.CleanupOptions(now=now))
    assert result.counts["objects_deleted"] == 1
    assert storage_listing()["temp"] == [tails[live.pk]]


def test_a_failing_temp_listing_is_a_reported_failure(settings, data_dir):
    apply_storage(settings, "local", data_dir)
    os.rmdir(data_dir / "temp")
    os.symlink(data_dir / "nowhere", data_dir / "temp")
    result = cleanup.sweep_temp_storage()
    assert result.failed >= 1 and "(listing)" in result.failures


@pytest.fixture
def s3_storage(settings, data_dir, moto_s3):
    return apply_storage(settings, "s3", data_dir, s3=moto_s3, bucket=moto_s3.new_bucket())


def test_sweep_keeps_a_multipart_upload_younger_than_the_grace(s3_storage, owner, settings):
    """An assembly begins its multipart upload before its session row names it: one begun
    within the grace is left alone, though no session owns it yet."""
    young = start_multipart("young")
    final = storage.final_storage()
    [listed] = final.connection.meta.client.list_multipart_uploads(Bucket=final.bucket_name)[
        "Uploads"
    ]  # moto says when it began (always in 2010): the sweep runs a minute after that
    a_minute_on = listed["Initiated"] + timedelta(minutes=1)
    result = cleanup.sweep_temp_storage(cleanup.CleanupOptions(now=a_minute_on))
    assert result.counts["uploads_aborted"] == 0
    assert multipart_ids() == {young}


def test_sweep_aborts_dead_assemblies_on_s3_not_live_ones(s3_storage, owner, settings):
    live_session = make_session(owner, total_parts=1)
    live, dead = start_multipart("live"), start_multipart("dead")
    UploadSession.objects.filter(pk=live_session.pk).update(
        status=Status.FINALIZING, assembly_upload_id=live
    )
    later = timezone.now() + timedelta(minutes=settings.PORTAL_ORPHAN_GRACE_MINUTES + 5)
    untracked = put_untracked_temp(timezone.now() - timedelta(days=1))
    dry = cleanup.sweep_temp_storage(cleanup.CleanupOptions(now=later, dry_run=True))
    assert dry.counts["uploads_aborted"] == 1 and dry.counts["delete_requests"] == 0
    assert multipart_ids() == {live, dead}
    stopped = cleanup.sweep_temp_storage(
        cleanup.CleanupOptions(now=later, should_stop=lambda: True)
    )
    assert stopped.stopped_early and stopped.counts["uploads_aborted"] == 0
    assert multipart_ids() == {live, dead}
    result = cleanup.sweep_temp_storage(cleanup.CleanupOptions(now=later))
    assert result.counts["uploads_aborted"] == 1
    assert result.counts["objects_deleted"] == 1 and result.counts["delete_requests"] == 1
    assert multipart_ids() == {live}
    assert untracked not in storage_listing()["temp"]


def test_orphans_count_one_s3_request_per_batch(s3_storage, owner):
    make_session(owner, status=Status.ABORTED, total_parts=3)
    make_session(owner, status=Status.COMPLETE, total_parts=2)
    result = cleanup.cleanup_orphan_temp_parts(cleanup.CleanupOptions(batch_size=3))
    assert result.counts["objects_deleted"] == 5
    assert result.counts["delete_requests"] == 2
    assert storage_listing()["temp"] == []


def test_a_job_stopped_by_ctrl_c_is_recorded_failed(db):
    with pytest.raises(KeyboardInterrupt), jobs.job_run("portal_x"):
        raise KeyboardInterrupt
    [row] = JobRun.objects.all()
    assert (row.outcome, row.counts) == (JobRun.Outcome.FAILED, {"error": "KeyboardInterrupt: "})


def test_a_job_that_raises_is_recorded_failed_with_its_error(db):
    with pytest.raises(ValueError), jobs.job_run("portal_x") as run:
        run.counts = {"done": 2}
        raise ValueError("boom " + "x" * 600)
    [row] = JobRun.objects.all()
    assert row.outcome == JobRun.Outcome.FAILED and row.finished_at is not None
    assert row.counts["done"] == 2
    assert row.counts["error"] == ("ValueError: boom " + "x" * 600)[:500]


def test_orphans_stop_between_batches_when_asked(portal_storage):
    bulk_seed(seed_owner(), n=3, status=Status.ABORTED, parts_per_session=1)
    batches = []
    result = cleanup.cleanup_orphan_temp_parts(
        cleanup.CleanupOptions(
            batch_size=1, should_stop=lambda: bool(batches), on_batch=batches.append
        )
    )
    assert result.stopped_early
    assert result.counts["objects_deleted"] == 2  # the batch in flight finishes
    assert len(storage_listing()["temp"]) == 1
