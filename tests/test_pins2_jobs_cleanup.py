"""Pins for the jobs area, second round (issue #31): a cleanup run's failures and summary,
the finalize job's summary, prune's batches. Real storage (local files or moto S3), real
database; nothing of ours is mocked."""

import copy
import json
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from portal import storage
from portal.models import JobRun, OutboxEvent
from portal.services import cleanup
from tests.commands import run_command
from tests.conftest import apply_storage
from tests.seed import put_untracked_temp

pytestmark = pytest.mark.django_db


@pytest.fixture
def s3_storage(settings, data_dir, moto_s3):
    return apply_storage(settings, "s3", data_dir, s3=moto_s3, bucket=moto_s3.new_bucket())


def final_bucket_gone(settings):
    """The final storage names a bucket that does not exist (deleted under the portal):
    the temp storage still lists, every request on the final one fails (NoSuchBucket)."""
    stores = copy.deepcopy(settings.STORAGES)
    stores["portal_final"]["OPTIONS"]["bucket_name"] = f"portal-gone-{uuid.uuid4().hex[:12]}"
    settings.STORAGES = stores


def elapsed_ms(started):
    return (time.monotonic() - started) * 1000


def test_an_outage_listing_multipart_uploads_is_a_failure_of_the_sweep(s3_storage, settings):
    later = timezone.now() + timedelta(minutes=settings.PORTAL_ORPHAN_GRACE_MINUTES + 5)
    untracked = put_untracked_temp(timezone.now() - timedelta(days=1))
    final_bucket_gone(settings)

    result = cleanup.sweep_temp_storage(cleanup.CleanupOptions(now=later))

    # The temp objects were swept; the multipart listing failed and says so.
    assert result.counts["objects_deleted"] == 1
    assert untracked not in [item.key for item in storage.list_temp()]
    assert result.failed == 1
    assert list(result.failures) == ["(multipart listing)"]
    assert "NoSuchBucket" in result.failures["(multipart listing)"]
    assert not result.stopped_early


def test_a_cleanup_run_whose_multipart_listing_fails_exits_1_as_partial(s3_storage, settings):
    final_bucket_gone(settings)

    ran = run_command("portal_cleanup", "--json")

    assert ran.code == 1, ran.err
    summary = json.loads(ran.out)
    assert summary["outcome"] == "partial" and summary["failed"] == 1
    assert summary["steps"]["sweep"]["failed"] == 1
    assert "(multipart listing)" in summary["steps"]["sweep"]["failures"]
    assert "1 deletion(s) failed" in ran.err
    assert JobRun.objects.get(job="portal_cleanup").outcome == JobRun.Outcome.PARTIAL


def test_a_cleanup_runs_duration_is_the_time_it_took(portal_storage):
    put_untracked_temp(timezone.now() - timedelta(days=1))
    started = time.monotonic()
    report = cleanup.run_cleanup_job()
    took = elapsed_ms(started)
    assert report.summary["outcome"] == "ok"
    assert 0 <= report.summary["duration_ms"] <= took + 1
    for step in report.summary["steps"].values():
        assert 0 <= step["duration_ms"] <= report.summary["duration_ms"] + 1


def test_a_skipped_cleanup_runs_duration_is_the_time_it_took(portal_storage, transactional_db):
    """Another run holds the lock (in a thread: its own database session on PostgreSQL)."""
    import threading

    from django.db import connections

    from portal import locks

    held, done = threading.Event(), threading.Event()

    def other_run():
        try:
            with locks.hold(cleanup.JOB):
                held.set()
                done.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=other_run)
    holder.start()
    try:
        assert held.wait(10)
        started = time.monotonic()
        report = cleanup.run_cleanup_job()
        took = elapsed_ms(started)
    finally:
        done.set()
        holder.join(10)
    assert report.summary["outcome"] == "skipped"
    assert 0 <= report.summary["duration_ms"] <= took + 1


def test_a_finalize_runs_summary_and_duration(portal_storage):
    started = time.monotonic()
    ran = run_command("portal_finalize", "--json")
    took = elapsed_ms(started)
    assert ran.code == 0, ran.err
    summary = json.loads(ran.out)
    assert summary["job"] == "portal_finalize" and summary["outcome"] == "ok"
    assert summary["stopped"] == "drained"
    assert 0 <= summary["duration_ms"] <= took + 1


def old_delivered_events(n, settings):
    at = timezone.now() - timedelta(days=settings.PORTAL_OUTBOX_RETENTION_DAYS + 1)
    OutboxEvent.objects.bulk_create(
        OutboxEvent(
            event_type=OutboxEvent.FILE_UPLOADED,
            aggregate_id=str(i),
            idempotency_key=f"pins2-{i}",
            payload={"n": i},
            status=OutboxEvent.Status.DELIVERED,
            delivered_at=at,
            next_attempt_at=at,
        )
        for i in range(n)
    )


def test_prune_deletes_delivered_events_a_batch_at_a_time(portal_storage, settings):
    old_delivered_events(5, settings)
    seen = []
    result = cleanup.prune_old_failed_sessions(
        cleanup.CleanupOptions(batch_size=2, on_batch=lambda run: seen.append(run.batches))
    )
    assert result.counts["outbox_events_pruned"] == 5
    assert seen == [1, 2, 3] and result.batches == 3
    assert not OutboxEvent.objects.exists()


def test_prune_stops_between_batches_of_delivered_events(portal_storage, settings):
    old_delivered_events(5, settings)
    seen = []
    result = cleanup.prune_old_failed_sessions(
        cleanup.CleanupOptions(batch_size=2, on_batch=seen.append, should_stop=lambda: bool(seen))
    )
    assert result.stopped_early
    assert result.counts["outbox_events_pruned"] == 2
    assert OutboxEvent.objects.count() == 3


def test_prune_with_nothing_to_do_reports_every_count(portal_storage):
    result = cleanup.prune_old_failed_sessions()
    assert result.as_dict()["counts"] == {
        "sessions_pruned": 0,
        "final_objects_deleted": 0,
        "outbox_events_pruned": 0,
        "job_runs_abandoned": 0,
        "job_runs_pruned": 0,
    }


def test_each_step_and_the_run_log_their_documented_fields(portal_storage, caplog):
    """docs/logging.md: ``cleanup.step`` carries one step's counts, failed, failures and
    stopped_early; ``cleanup.finished`` the run's summary."""
    put_untracked_temp(timezone.now() - timedelta(days=1))
    caplog.set_level("INFO", logger="portal.services.cleanup")
    report = cleanup.run_cleanup_job()
    records = [r for r in caplog.records if r.__dict__.get("event") == "cleanup.step"]
    assert [r.step for r in records] == list(cleanup.STEPS)
    for record in records:
        step = report.summary["steps"][record.step]
        logged = {name: getattr(record, name) for name in step if name != "batches"}
        assert logged == {name: value for name, value in step.items() if name != "batches"}
        assert record.dry_run is False
    assert report.summary["steps"]["sweep"]["counts"]["objects_deleted"] == 1
    [finished] = [r for r in caplog.records if r.__dict__.get("event") == "cleanup.finished"]
    assert finished.outcome == "ok" and finished.steps == report.summary["steps"]
    assert finished.duration_ms == report.summary["duration_ms"]
