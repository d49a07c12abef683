"""The scrape-time collector: its figures against rows in a real database, its cache, a
database that fails, and the item counts of real ``portal_cleanup``/``portal_dispatch`` runs.
"""

import io
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.metrics import collector, figures
from portal.models import JobRun, OutboxEvent, UploadSession
from tests.metrics_helpers import (
    metrics_settings,  # noqa: F401  (autouse here)
    names,
    scrape,
    value,
)
from tests.outbox_helpers import SECRET, make_events, point_at_runner
from tests.runner import RunnerServer
from tests.seed import make_session, seed_owner

NOW = datetime(2030, 1, 31, 12, 0, tzinfo=UTC)
Status = UploadSession.Status


def ago(**delta):
    return NOW - timedelta(**delta)


def run(job, outcome, started, seconds, counts=None):
    return JobRun.objects.create(
        job=job,
        outcome=outcome,
        started_at=started,
        finished_at=None
        if outcome == JobRun.Outcome.RUNNING
        else started + timedelta(seconds=seconds),
        counts=counts or {},
    )


CLEANUP_COUNTS = {
    "stale": {"sessions_expired": 7, "files_failed": 7},
    "orphans": {"sessions": 3, "objects_deleted": 12, "delete_requests": 1},
    "sweep": {"objects_listed": 40, "objects_deleted": 2, "delete_requests": 1},
    "prune": {"sessions_pruned": 5, "outbox_events_pruned": 9, "job_runs_pruned": 1},
}


def seed_jobs():
    cleanup = JobRun.Outcome
    run("portal_cleanup", cleanup.OK, ago(minutes=40), 60, {"stale": {"sessions_expired": 1}})
    run("portal_cleanup", cleanup.FAILED, ago(minutes=20), 10, CLEANUP_COUNTS)
    run("portal_cleanup", cleanup.SKIPPED, ago(minutes=50), 1)
    run("portal_cleanup", cleanup.RUNNING, ago(minutes=1), 0)
    # A dead run from long ago does not make the job "running" now.
    run("portal_dispatch", cleanup.RUNNING, ago(days=2), 0)
    run("portal_dispatch", cleanup.ABANDONED, ago(days=3), 5)
    # Hostile counts (hand-edited in the admin, or a future format): read as 0.
    garbage = {"delivered": "lots", "retried": True, "gave_up": -3, "requeued": [1], "released": 2}
    run("portal_dispatch", cleanup.PARTIAL, ago(seconds=90), 30, garbage)


def seed_sessions_and_events(owner):
    make_session(owner, status=Status.INIT, total_parts=4, expires_at=ago(minutes=10))
    make_session(owner, status=Status.IN_PROGRESS, total_parts=4, received=[1, 2])
    make_session(owner, status=Status.FAILED, total_parts=4, finished_at=ago(minutes=30))
    make_session(owner, status=Status.ABORTED, total_parts=2, received=[], finished_at=ago(hours=1))
    complete = make_session(owner, status=Status.COMPLETE, total_parts=2)
    complete.parts.update(temp_key="")  # its temp objects were reclaimed
    make_events(3, due=ago(minutes=5))
    make_events(1, due=NOW + timedelta(minutes=5))
    make_events(2, due=ago(days=1), status=OutboxEvent.Status.FAILED, attempts=12)
    make_events(1, due=ago(minutes=2), status=OutboxEvent.Status.SENDING)  # lease ran out
    make_events(4, due=ago(days=1), status=OutboxEvent.Status.DELIVERED)


@pytest.mark.usefixtures("portal_storage")
def test_figures_match_the_rows_in_the_database(db, client):
    owner = seed_owner()
    with time_machine.travel(NOW, tick=False):
        seed_jobs()
        seed_sessions_and_events(owner)
        samples = scrape(client)

    def job(name, command, **labels):
        return value(samples, name, command=command, **labels)

    assert value(samples, "portal_metrics_database_up") == 1
    assert job("portal_job_interval_seconds", "portal_cleanup") == 900
    assert job("portal_job_interval_seconds", "portal_dispatch") == 60
    # Cleanup: the failed run 20 minutes ago is the last; the ok run 40 minutes ago the last
    # success; one has been running for a minute.
    last_end = ago(minutes=20) + timedelta(seconds=10)
    assert job("portal_job_last_run_timestamp_seconds", "portal_cleanup") == last_end.timestamp()
    success_end = ago(minutes=40) + timedelta(seconds=60)
    assert job("portal_job_last_success_timestamp_seconds", "portal_cleanup") == (
        success_end.timestamp()
    )
    assert job("portal_job_last_run_duration_seconds", "portal_cleanup") == 10
    outcomes = {
        o: job("portal_job_last_run_outcome", "portal_cleanup", outcome=o)
        for o in ("ok", "failed", "partial", "skipped", "abandoned")
    }
    assert outcomes == {"ok": 0, "failed": 1, "partial": 0, "skipped": 0, "abandoned": 0}
    items = {
        item: job("portal_job_last_run_items", "portal_cleanup", item=item)
        for item in ("expired", "deleted", "swept", "pruned", "events_pruned")
    }
    assert items == {"expired": 7, "deleted": 12, "swept": 2, "pruned": 5, "events_pruned": 9}
    assert job("portal_job_running", "portal_cleanup") == 1
    # Dispatch: the partial run counts as success; garbage counts read 0, good ones stay.
    assert job("portal_job_running", "portal_dispatch") == 0
    assert job("portal_job_last_run_outcome", "portal_dispatch", outcome="partial") == 1
    assert job("portal_job_last_run_duration_seconds", "portal_dispatch") == 30
    for item in ("delivered", "retried", "gave_up", "requeued", "lost_lease"):
        assert job("portal_job_last_run_items", "portal_dispatch", item=item) == 0
    assert job("portal_job_last_run_items", "portal_dispatch", item="released") == 2

    outbox = {
        s: value(samples, "portal_outbox_events", status=s)
        for s in ("pending", "sending", "failed")
    }
    assert outbox == {"pending": 4, "sending": 1, "failed": 2}
    assert value(samples, "portal_outbox_events", status="delivered") is None
    assert value(samples, "portal_outbox_oldest_due_age_seconds") == 300

    sessions = {
        s: value(samples, "portal_upload_sessions", status=s)
        for s in ("init", "in_progress", "failed", "aborted", "complete")
    }
    assert sessions == {"init": 1, "in_progress": 1, "failed": 1, "aborted": 1, "complete": None}
    assert value(samples, "portal_upload_sessions_oldest_expired_age_seconds") == 600
    # init: 4 x 64 bytes to come; in_progress: 2 of 4 parts received.
    assert value(samples, "portal_upload_open_reserved_bytes") == 4 * 64 + 2 * 64
    assert value(samples, "portal_upload_temp_objects") == 2 + 4  # in_progress + failed
    assert value(samples, "portal_upload_temp_objects_oldest_finished_age_seconds") == 1800


def test_a_fresh_database_reports_zeros_and_never_succeeded(db, client):
    samples = scrape(client)
    for command in ("portal_cleanup", "portal_dispatch"):
        labels = {"command": command}
        assert value(samples, "portal_job_last_success_timestamp_seconds", **labels) == 0
        assert value(samples, "portal_job_last_run_timestamp_seconds", **labels) is None
        assert value(samples, "portal_job_running", **labels) == 0
    assert value(samples, "portal_outbox_oldest_due_age_seconds") == 0
    assert value(samples, "portal_upload_temp_objects") == 0


def test_counts_stop_at_the_cap(db, client, monkeypatch):
    monkeypatch.setattr(figures, "COUNT_CAP", 3)
    make_events(5, status=OutboxEvent.Status.FAILED)
    samples = scrape(client)
    assert value(samples, "portal_outbox_events", status="failed") == 3
    assert value(samples, "portal_metrics_count_cap") == 3


def test_query_count_does_not_depend_on_the_rows(db, portal_storage):
    def queries():
        collector.collector.clear()
        with CaptureQueriesContext(connection) as captured:
            collector.collector.collect()
        return len(captured)

    empty = queries()
    owner = seed_owner()
    for _ in range(5):
        make_session(owner, status=Status.FAILED, total_parts=3)
    make_events(30)
    make_events(30, status=OutboxEvent.Status.FAILED)
    seed_jobs()
    assert queries() == empty


def test_figures_are_cached_for_a_few_seconds(db):
    with time_machine.travel(NOW, tick=False) as traveller:
        with CaptureQueriesContext(connection) as first:
            collector.collector.collect()
        make_events(2, status=OutboxEvent.Status.FAILED)
        traveller.shift(timedelta(seconds=collector.CACHE_SECONDS - 1))
        with CaptureQueriesContext(connection) as cached:
            families = collector.collector.collect()
        assert len(first) > 0 and len(cached) == 0
        failed = next(f for f in families if f.name == "portal_outbox_events")
        assert {s.labels["status"]: s.value for s in failed.samples}["failed"] == 0
        traveller.shift(timedelta(seconds=2))
        families = collector.collector.collect()
        failed = next(f for f in families if f.name == "portal_outbox_events")
        assert {s.labels["status"]: s.value for s in failed.samples}["failed"] == 2


def test_a_database_error_keeps_the_rest_of_the_scrape(transactional_db, portal_storage, caplog):
    # Autocommit, as in production: a failing statement leaves the connection usable.
    client = Client()
    client.get("/health")
    if portal_storage["PORTAL_STORAGE"] == "local":
        for root in ("temp", "final"):
            (Path(portal_storage["PORTAL_DATA_DIR"]) / root).mkdir(exist_ok=True)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE portal_outboxevent RENAME TO portal_outboxevent_away")
    try:
        samples = scrape(client)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE portal_outboxevent_away RENAME TO portal_outboxevent")
    assert value(samples, "portal_metrics_database_up") == 0
    present = names(samples)
    assert not {
        n for n in present if n.startswith(("portal_job_", "portal_outbox_", "portal_upload_"))
    }
    assert "portal_http_requests_total" in present
    if portal_storage["PORTAL_STORAGE"] == "local":
        assert value(samples, "portal_storage_free_bytes", storage="portal_temp") > 0
    assert any("cannot read the database figures" in r.getMessage() for r in caplog.records)


def test_local_free_space_is_the_filesystems(db, client, settings, portal_storage, data_dir):
    settings.PORTAL_MIN_FREE_BYTES = 123_456_789
    samples = scrape(client)
    if portal_storage["PORTAL_STORAGE"] == "s3":
        assert "portal_storage_free_bytes" not in names(samples)
        return
    usage = shutil.disk_usage(data_dir / "temp")
    assert value(samples, "portal_storage_size_bytes", storage="portal_temp") == usage.total
    free = value(samples, "portal_storage_free_bytes", storage="portal_final")
    assert abs(free - usage.free) < 64 * 1024 * 1024  # other processes write meanwhile
    guard = value(samples, "portal_storage_min_free_bytes", storage="portal_temp")
    assert guard == 123_456_789
    # A root that is gone (an unmounted volume) is not measured on what lies beneath it.
    shutil.rmtree(data_dir / "temp")
    collector.collector.clear()
    samples = scrape(client)
    assert value(samples, "portal_storage_free_bytes", storage="portal_temp") is None
    assert value(samples, "portal_storage_free_bytes", storage="portal_final") > 0


def test_items_follow_a_real_cleanup_run(db, client, portal_storage):
    owner = seed_owner()
    make_session(
        owner,
        status=Status.IN_PROGRESS,
        total_parts=3,
        expires_at=timezone.now() - timedelta(hours=1),
    )
    out = io.StringIO()
    call_command("portal_cleanup", "--json", stdout=out)
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    steps = summary["steps"]
    samples = scrape(client)
    items = {
        item: value(samples, "portal_job_last_run_items", command="portal_cleanup", item=item)
        for item in ("expired", "deleted", "swept", "pruned")
    }
    assert items == {
        "expired": steps["stale"]["counts"]["sessions_expired"],
        "deleted": steps["orphans"]["counts"]["objects_deleted"],
        "swept": steps["sweep"]["counts"]["objects_deleted"],
        "pruned": steps["prune"]["counts"]["sessions_pruned"],
    }
    assert items["expired"] == 1 and items["deleted"] == 3
    assert (
        value(samples, "portal_job_last_run_outcome", command="portal_cleanup", outcome="ok") == 1
    )


def test_items_follow_a_real_dispatch_run(db, client, settings, portal_storage):
    with RunnerServer("ok", secret=SECRET) as runner:
        point_at_runner(settings, runner)
        make_events(3)
        out = io.StringIO()
        call_command("portal_dispatch", "--json", stdout=out)
    summary = json.loads(out.getvalue())
    samples = scrape(client)
    delivered = value(
        samples, "portal_job_last_run_items", command="portal_dispatch", item="delivered"
    )
    assert delivered == summary["delivered"] == 3
    assert (
        value(samples, "portal_job_last_success_timestamp_seconds", command="portal_dispatch") > 0
    )


def test_a_stalled_assembly_shows_until_portal_finalize_takes_it_over(
    transactional_db, client, portal_storage
):
    """A dead assembler's session: finalizing, its lease run out for 9 minutes; a real
    ``portal_finalize`` run takes it over and the figures follow."""
    from portal.services.finalize import lease

    session = make_session(seed_owner(), status=Status.IN_PROGRESS, total_parts=3, as_uploaded=True)
    with time_machine.travel(NOW, tick=False) as traveller:
        assert lease.begin(session.pk)
        traveller.shift(timedelta(minutes=10))
        samples = scrape(client)
        assert value(samples, "portal_upload_sessions", status="finalizing") == 1
        assert value(samples, "portal_upload_assembly_stalled_age_seconds") == (
            600 - lease.LEASE_SECONDS
        )
        out = io.StringIO()
        call_command("portal_finalize", "--json", stdout=out)
        collector.collector.clear()
        samples = scrape(client)
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["completed"] == 1
    items = {
        item: value(samples, "portal_job_last_run_items", command="portal_finalize", item=item)
        for item in ("completed", "failed", "busy", "errors")
    }
    assert items == {"completed": 1, "failed": 0, "busy": 0, "errors": 0}
    assert value(samples, "portal_upload_sessions", status="finalizing") == 0
    assert value(samples, "portal_upload_assembly_stalled_age_seconds") == 0
