"""Pins for the jobs area (issue #31): cleanup, dispatch, the outbox, the HTTP client, the
database gate and the management commands, portal_upload included."""

import contextlib
import hashlib
import io
import json
import logging
import os
import socket
import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from portal import storage
from portal.httpclient import KeepAliveConnection, backoff_delay, http_url_problem
from portal.models import JobRun, OutboxEvent, TusUpload, UploadSession
from portal.services import cleanup, jobs, outbox
from portal.services.outbox import dispatch
from tests.commands import from_command_line, run_command
from tests.conftest import apply_storage
from tests.peers import LoopbackServer
from tests.seed import (
    Status,
    bulk_seed,
    make_session,
    put_untracked_temp,
    seed_owner,
    storage_listing,
    temp_keys_of,
)

pytestmark = pytest.mark.django_db
SECOND = timedelta(seconds=1)


@pytest.fixture
def owner(db):
    return seed_owner("pins-owner")


def events_named(caplog, name):
    return [r for r in caplog.records if getattr(r, "event", None) == name]


def break_deletion(key):
    """A local temp object whose deletion fails (unlink() of a directory)."""
    path = storage.temp_storage().path(key)
    os.unlink(path)
    os.mkdir(path)


# --- the cleanup run -------------------------------------------------------------------------


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


# --- prune -----------------------------------------------------------------------------------


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


# --- stale -----------------------------------------------------------------------------------


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


# --- sweep -----------------------------------------------------------------------------------


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


def start_multipart(name):
    final = storage.final_storage()
    client = final.connection.meta.client
    answer = client.create_multipart_upload(
        Bucket=final.bucket_name, Key=final._normalize_name(name)
    )
    return answer["UploadId"]


def multipart_ids():
    final = storage.final_storage()
    listed = final.connection.meta.client.list_multipart_uploads(Bucket=final.bucket_name)
    return {upload["UploadId"] for upload in listed.get("Uploads", ())}


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


# --- the outbox ------------------------------------------------------------------------------


@pytest.fixture
def runner():
    from tests.runner import RunnerServer
    from tests.test_outbox import SECRET

    with RunnerServer("ok", secret=SECRET) as server:
        yield server


@pytest.fixture
def runner_settings(settings, runner, portal_storage):
    from tests.test_outbox import point_at_runner

    return point_at_runner(settings, runner)


def make_events(n, **fields):
    from tests.test_outbox import make_events

    return make_events(n, **fields)


def reload(event):
    return OutboxEvent.objects.get(pk=event.pk)


def test_file_uploaded_payload_fields(portal_storage, owner):
    from tests.test_outbox import stored_file

    file = stored_file(owner)
    moment = timezone.now()
    with time_machine.travel(moment, tick=False):
        event = outbox.enqueue_file_uploaded(file)
    assert event.next_attempt_at == moment
    assert event.payload["occurred_at"] == moment.isoformat()
    assert "T" in event.payload["occurred_at"]
    assert event.payload["file"]["size_bytes"] == 1234
    assert event.payload["actor"] == {"user_id": owner.pk, "username": owner.username}
    assert outbox.enqueue_file_uploaded(file).pk == event.pk  # one event per file


def test_the_endpoints_query_string_is_kept(runner, runner_settings):
    runner_settings.PORTAL_RUNNER_ENDPOINT = runner.url + "?tenant=a&x=1"
    make_events(1)
    assert outbox.dispatch_due(outbox.DispatchConfig.from_settings()).delivered == 1
    assert runner.requests[0].path == "/hooks/portal?tenant=a&x=1"


@pytest.mark.parametrize("status", [302, 404])
def test_a_redirect_or_client_error_is_a_failed_delivery(runner, runner_settings, status):
    runner.set_mode("error", status=status)
    [event] = make_events(1)
    result = outbox.dispatch_due(outbox.DispatchConfig.from_settings())
    assert (result.delivered, result.retried) == (0, 1)
    event = reload(event)
    assert (event.status, event.attempts) == ("pending", 1)
    assert event.last_error == {302: "HTTP 302 Found", 404: "HTTP 404 Not Found"}[status]


def test_an_event_due_exactly_now_is_claimed(runner_settings):
    moment = timezone.now()
    [event] = make_events(1, due=moment)
    [later] = make_events(1, due=moment + timedelta(microseconds=1))
    with time_machine.travel(moment, tick=False):
        claim = outbox.claim_due(outbox.DispatchConfig.from_settings())
    assert [e.id for e in claim.events] == [event.pk]
    assert reload(later).status == "pending"


def test_requeue_of_no_ids_requeues_nothing(runner_settings):
    [failed] = make_events(1, status=OutboxEvent.Status.FAILED, attempts=4)
    assert outbox.requeue_failed([]) == 0
    assert reload(failed).status == "failed"
    assert outbox.requeue_failed([failed.pk]) == 1
    assert (reload(failed).status, reload(failed).attempts) == ("pending", 0)


def test_the_backlog_counts_pending_and_sending_events(runner_settings):
    later = timezone.now() + timedelta(hours=1)
    make_events(2, due=later)
    make_events(1, due=later, status=OutboxEvent.Status.SENDING)
    make_events(1, status=OutboxEvent.Status.DELIVERED)
    make_events(1, due=later, status=OutboxEvent.Status.FAILED)
    report = outbox.run_dispatch()
    assert report.exit_code == 0
    [run] = JobRun.objects.filter(job="portal_dispatch")
    assert run.counts[dispatch.BACKLOG_KEY] == 3
    assert run.outcome == "ok"


def test_a_limited_run_claims_no_more_than_its_limit(runner, runner_settings):
    make_events(5)
    result = outbox.dispatch_due(outbox.DispatchConfig.from_settings(), limit=2)
    assert (result.delivered, result.released, result.stopped) == (2, 0, "limit")
    statuses = sorted(OutboxEvent.objects.values_list("status", "attempts"))
    assert statuses == [("delivered", 1)] * 2 + [("pending", 0)] * 3


@pytest.mark.parametrize("room, sent", [(-0.5, 0), (1.0, 2)])
def test_a_batch_stops_a_delivery_deadline_before_its_lease_ends(
    runner, runner_settings, room, sent
):
    """A claim with less than one delivery deadline plus the margin left sends nothing and
    hands its events back; with more it sends them."""
    import time

    from portal.services.outbox.client import RunnerClient

    make_events(2)
    config = outbox.DispatchConfig.from_settings()
    claim = outbox.claim_due(config)
    budget = config.timeout + outbox.LEASE_MARGIN_SECONDS
    claim.expires_monotonic = time.monotonic() + budget + room
    result = outbox.DispatchResult()
    client = RunnerClient(config)
    try:
        assert dispatch._send_batch(client, claim, config, None, result) is True
    finally:
        client.close()
    assert (len(runner.requests), result.delivered, result.released) == (sent, sent, 2 - sent)
    assert sorted(OutboxEvent.objects.values_list("status", flat=True)) == (
        ["delivered"] * sent + ["pending"] * (2 - sent)
    )


def test_a_lease_is_twice_a_delivery_deadline_and_margin(runner_settings):
    runner_settings.PORTAL_RUNNER_TIMEOUT_SECONDS = 7.0
    assert outbox.DispatchConfig.from_settings().lease_seconds == 24.0


# --- job runs --------------------------------------------------------------------------------


def test_a_job_stopped_by_ctrl_c_is_recorded_failed(db):
    with pytest.raises(KeyboardInterrupt), jobs.job_run("portal_x"):
        raise KeyboardInterrupt
    [row] = JobRun.objects.all()
    assert (row.outcome, row.counts) == (JobRun.Outcome.FAILED, {"error": "KeyboardInterrupt: "})


def test_a_connection_without_a_port_takes_its_schemes():
    assert KeepAliveConnection("https", "runner", None, timeout=1).port == 443
    assert KeepAliveConnection("http", "runner", None, timeout=1).port == 80
    assert KeepAliveConnection("https", "runner", 8443, timeout=1).port == 8443


def test_a_job_that_raises_is_recorded_failed_with_its_error(db):
    with pytest.raises(ValueError), jobs.job_run("portal_x") as run:
        run.counts = {"done": 2}
        raise ValueError("boom " + "x" * 600)
    [row] = JobRun.objects.all()
    assert row.outcome == JobRun.Outcome.FAILED and row.finished_at is not None
    assert row.counts["done"] == 2
    assert row.counts["error"] == ("ValueError: boom " + "x" * 600)[:500]


# --- the HTTP client -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, problem",
    [
        ("http://portal:8000/api", ""),
        ("https://portal/", ""),
        ("http://portal/a b", "must be ASCII without spaces (percent-encode other characters)"),
        ("http://portal/\u00e9", "must be ASCII without spaces (percent-encode other characters)"),
        ("http://portal:0/", "must have a numeric port from 1 to 65535"),
        ("http://portal:65536/", "must have a numeric port from 1 to 65535"),
        ("ftp://portal/", "must be an http:// or https:// URL with a host"),
        ("http:///path", "must be an http:// or https:// URL with a host"),
        ("http://[::1/", "must be an http:// or https:// URL with a host"),
    ],
)
def test_http_url_problem(url, problem):
    assert http_url_problem(url) == problem


def test_backoff_doubles_with_equal_jitter_up_to_the_cap():
    def delay(n, r):
        return backoff_delay(n, base=10, cap=60, rand=lambda: r)

    assert [delay(n, 0.0) for n in range(5)] == [5, 10, 20, 30, 30]
    assert [delay(n, 1.0) for n in range(5)] == [10, 20, 40, 60, 60]
    assert delay(0, 0.5) == 7.5
    assert delay(10_000, 1.0) == 60


# --- the commands ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command, args, accepted",
    [
        ("portal_cleanup", ["--batch-size", "1"], True),
        ("portal_cleanup", ["--batch-size", "10000"], True),
        ("portal_cleanup", ["--batch-size", "10001"], False),
        ("portal_cleanup", ["--batch-size", "\u0969"], False),
        ("portal_cleanup", ["--max-seconds", "86400"], True),
        ("portal_cleanup", ["--max-seconds", "0"], False),
        ("portal_cleanup", ["--max-seconds", "soon"], False),
        ("portal_cleanup", ["--batch-size", "1.5"], False),
        ("portal_cleanup", ["--max-seconds", "nan"], False),
        ("portal_cleanup", ["--max-seconds", "\u0969"], False),
        ("portal_dispatch", ["--limit", "0"], False),
        ("portal_dispatch", ["--limit", "1"], True),
        ("portal_upload", ["f", "--url", "http://p/", "--retries", "0"], True),
        ("portal_upload", ["f", "--url", "http://p/", "--retries", "-1"], False),
        ("portal_upload", ["f", "--url", "http://p/a b"], False),
    ],
)
def test_option_bounds(command, args, accepted):
    from tests.commands import _from_command_line

    parser = _from_command_line(command).create_parser("manage.py", command)
    if accepted:
        parser.parse_args(args)
    else:
        with pytest.raises(SystemExit) as exited:
            parser.parse_args(args)
        assert exited.value.code == 2


def test_with_json_logs_a_usage_problem_still_exits_2(settings, caplog):
    settings.PORTAL_LOG_FORMAT = "json"
    settings.PORTAL_RUNNER_ENDPOINT = ""
    with pytest.raises(SystemExit) as exited:
        from_command_line("portal_dispatch")
    assert exited.value.code == 2
    [record] = [r for r in caplog.records if r.name == "portal.commands"]
    assert record.exit_code == 2
    assert "PORTAL_RUNNER_ENDPOINT is not set" in record.getMessage()


def test_a_settings_problem_refuses_a_job_with_exit_2(settings):
    settings.PORTAL_CHUNK_SIZE = settings.PORTAL_CHUNK_SIZE_MAX + 1
    result = run_command("portal_cleanup")
    assert result.code == 2
    assert "Configuration error: portal.E001" in result.err


def test_cleanup_shows_no_progress_at_verbosity_1(portal_storage, owner):
    make_session(owner, status=Status.ABORTED, total_parts=1)
    quiet = run_command("portal_cleanup", verbosity=1)
    assert quiet.code == 0 and quiet.err == ""
    make_session(owner, status=Status.ABORTED, total_parts=1)
    shown = run_command("portal_cleanup", "--only", "orphans", verbosity=2)
    assert "cleanup orphans: batch 1 sessions=1 objects_deleted=1" in shown.err


def test_dispatch_text_names_the_requeued_events(runner, runner_settings):
    make_events(1, status=OutboxEvent.Status.FAILED, attempts=4)
    result = run_command("portal_dispatch", "--retry-failed")
    assert result.code == 0
    assert result.out.startswith("portal_dispatch: requeued 1, delivered 1, retried 0,")
    plain = run_command("portal_dispatch")
    assert plain.out.startswith("portal_dispatch: delivered 0, retried 0, gave up 0,")


def test_drain_status_follows_the_flag_file(settings, tmp_path):
    settings.PORTAL_DRAIN_FILE = str(tmp_path / "drain")
    assert run_command("portal_drain", "status").out.startswith("serving:")
    assert run_command("portal_drain", "start").out.startswith("draining:")
    assert run_command("portal_drain", "status").out.strip() == f"draining: {tmp_path}/drain exists"
    assert "removed" in run_command("portal_drain", "stop").out
    assert "was not there" in run_command("portal_drain", "stop").out


# --- the database gate -----------------------------------------------------------------------


def test_a_cors_preflight_passes_a_closed_gate(client, monkeypatch):
    from django.db import OperationalError

    from portal import dbgate

    monkeypatch.setattr(dbgate, "gate", dbgate.DatabaseGate(retry_seconds=60))
    dbgate.gate.failed(OperationalError("down"))
    url = "/api/v1/uploads/sessions"
    assert client.get(url).status_code == 503
    assert client.options(url).status_code != 503
    assert client.head(url).status_code == 503


# --- portal_upload against a scripted portal -------------------------------------------------


class FakePortal:
    """The upload API's happy path on loopback, in memory, with scripted answers first:
    ``script(method, kind, (status, json_or_bytes), ...)`` (kind: sessions, session, part,
    finalize). It records ``(method, path, body)`` of every request."""

    def __init__(self, size, chunk, *, received=(), data=None):
        import http.server
        import threading

        self.data = data
        self.size, self.chunk = size, chunk
        self.total = -(-size // chunk)
        self.parts = {}
        self.received = received
        self.requests = []
        self.answers = {}
        self.file_size = None
        self.put_delay = 0.0
        portal = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_one(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.command == "PUT" and portal.put_delay:
                    time.sleep(portal.put_delay)
                status, payload = portal.answer(self.command, self.path, body)
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PUT = handle_one

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self):
        self._thread.start()
        for number in self.received:
            self.parts[number] = self.slice(number)
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self):
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def slice(self, number):
        return self.data[(number - 1) * self.chunk : number * self.chunk]

    def script(self, method, kind, *answers):
        self.answers.setdefault((method, kind), []).extend(answers)

    def file(self):
        assembled = b"".join(self.parts[n] for n in sorted(self.parts))
        size = len(assembled) if self.file_size is None else self.file_size
        return {"id": "f1", "size_bytes": size, "sha256": hashlib.sha256(assembled).hexdigest()}

    def answer(self, method, path, body):
        self.requests.append((method, path, body))
        rest = path.split("/api/v1/uploads/", 1)[1].split("/")
        kind = {1: "sessions", 2: "session", 3: "finalize", 4: "part"}[len(rest)]
        if self.answers.get((method, kind)):
            return self.answers[(method, kind)].pop(0)
        if kind == "sessions":
            return 201, {
                "id": "s1",
                "status": "in_progress",
                "total_parts": self.total,
                "chunk_size_bytes": self.chunk,
            }
        if kind == "session":
            received = ",".join(str(n) for n in sorted(self.parts))
            return 200, {"status": "in_progress", "received_parts": received, "file": self.file()}
        if kind == "part":
            self.parts[int(rest[3])] = body
            return 201, {}
        return 200, {"file": self.file()}

    def puts(self):
        return [
            (path.rsplit("/", 1)[1], body)
            for method, path, body in self.requests
            if method == "PUT"
        ]


@pytest.fixture
def upload_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_TOKEN", "tok")
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(3 * 100 + 5))
    return path


@pytest.fixture
def slept(monkeypatch):
    from portal.management.commands import portal_upload

    delays = []
    monkeypatch.setattr(portal_upload.time, "sleep", delays.append)
    return delays


def upload(path, url, *args):
    return run_command("portal_upload", str(path), "--url", url, *args)


def test_upload_resumes_sending_only_the_missing_parts_from_their_offsets(upload_file):
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, received=[1, 3], data=data) as portal:
        result = upload(upload_file, portal.url)
    assert result.code == 0, result.err
    assert sorted(portal.puts()) == [("2", data[100:200]), ("4", data[300:])]
    assert "resuming: 2 of 4 parts already on the server" in result.out
    assert "uploaded 2 parts" in result.out and result.out.endswith("OK\n")


def test_upload_retries_a_503_with_backoff_until_its_retries_run_out(upload_file, slept):
    data = upload_file.read_bytes()
    busy = (503, {"error": {"code": "unavailable"}})
    with FakePortal(len(data), 100, data=data) as portal:
        portal.script("PUT", "part", busy, busy)
        result = upload(upload_file, portal.url, "--retries", "2", "--parallel", "1")
    assert result.code == 0, result.err
    assert [n for n, _ in portal.puts()] == ["1", "1", "1", "2", "3", "4"]
    assert 0.25 <= slept[0] <= 0.5 and 0.5 <= slept[1] <= 1.0
    with FakePortal(len(data), 100, data=data) as portal:
        portal.script("PUT", "part", busy, busy)
        result = upload(upload_file, portal.url, "--retries", "1", "--parallel", "1")
    assert result.code == 1
    assert "/uploads/sessions/s1/parts/1: HTTP 503 (gave up after 2 tries)" in result.err


def test_upload_does_not_retry_a_4xx_and_names_the_step(upload_file, slept):
    with FakePortal(305, 100) as portal:
        portal.script("POST", "sessions", (400, {"error": {"code": "bad", "message": "no"}}))
        result = upload(upload_file, portal.url)
    assert result.code == 1 and slept == []
    assert "creating the session failed: HTTP 400 bad: no" in result.err
    assert len(portal.requests) == 1


def test_upload_a_non_json_2xx_is_not_the_portal(upload_file):
    with FakePortal(305, 100) as portal:
        portal.script("POST", "sessions", (200, b"<html>hi</html>"))
        result = upload(upload_file, portal.url)
    assert result.code == 1
    assert "HTTP 200 but the answer is not the portal's JSON" in result.err


@pytest.mark.parametrize("path", ["", "/", "/api/v1", "/api/v1/"])
def test_upload_adds_the_api_prefix_once(upload_file, path):
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, data=data) as portal:
        result = upload(upload_file, portal.url + path)
    assert result.code == 0, result.err
    assert all(p.startswith("/api/v1/uploads/") for _, p, _ in portal.requests)


def test_upload_a_409_part_means_the_file_changed(upload_file):
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, data=data) as portal:
        portal.script("PUT", "part", (409, {"error": {"code": "part_conflict", "message": "x"}}))
        result = upload(upload_file, portal.url, "--parallel", "1")
    assert result.code == 1
    assert "part 1 failed: HTTP 409 part_conflict: x; the file changed" in result.err


def test_upload_a_part_in_progress_is_retried(upload_file, slept):
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, data=data) as portal:
        portal.script("PUT", "part", (409, {"error": {"code": "part_in_progress"}}))
        result = upload(upload_file, portal.url, "--parallel", "1")
    assert result.code == 0, result.err
    assert len(slept) == 1


def test_upload_polls_an_assembly_and_stops_when_it_failed(upload_file, slept):
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, data=data) as portal:
        portal.script("POST", "finalize", (202, {"status": "finalizing"}))
        portal.script(
            "GET",
            "session",
            (200, {"status": "in_progress", "received_parts": ""}),
            (200, {"status": "finalizing", "assembly": {"assembled_bytes": 5, "total_bytes": 9}}),
            (200, {"status": "failed", "failure_reason": "disk full"}),
        )
        result = upload(upload_file, portal.url)
    assert result.code == 1
    assert "finalize failed: the session is failed: disk full" in result.err
    assert len(slept) == 2


def test_upload_refuses_a_stored_file_of_another_size(upload_file):
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, data=data) as portal:
        portal.file_size = len(data) + 1
        result = upload(upload_file, portal.url)
    assert result.code == 1
    assert "sha256 mismatch" in result.err


def test_upload_refuses_an_empty_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_TOKEN", "tok")
    (tmp_path / "empty").write_bytes(b"")
    result = upload(tmp_path / "empty", "http://127.0.0.1:9/")
    assert result.code == 2 and "not a readable, non-empty file" in result.err


# --- the HTTP client against misbehaving peers -----------------------------------------------


class EarlyAnswer(LoopbackServer):
    """Answers 413 after the headers, never reads the body, and closes."""

    def answer(self, conn):
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(4096)
        conn.sendall(b"HTTP/1.1 413 Too Large\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno")
        time.sleep(0.1)


class SlowReader(LoopbackServer):
    """Reads a request's body a little at a time and never answers."""

    CONNECTION_TIMEOUT = 10

    def answer(self, conn):
        deadline = time.monotonic() + 6
        while not self._stop.is_set() and time.monotonic() < deadline and conn.recv(8192):
            time.sleep(0.02)


class Zeros(io.RawIOBase):
    def __init__(self, size):
        self.left = size

    def read(self, size=-1):
        size = self.left if size < 0 else min(size, self.left)
        self.left -= size
        return b"\0" * size


def test_an_answer_before_the_body_is_read_is_returned():
    body = io.BytesIO(b"x" * (32 << 20))
    with EarlyAnswer() as peer:
        connection = KeepAliveConnection("http", "127.0.0.1", peer.port, timeout=10)
        answer = connection.exchange(
            "PUT", "/", headers={"Content-Length": str(32 << 20)}, body=lambda: body
        )
        connection.close()
    assert (answer.status, answer.body) == (413, b"no")
    assert body.closed  # a file-like body is closed once sent


def test_a_peer_that_reads_slowly_cannot_stretch_the_deadline():
    size = 1 << 30
    with SlowReader() as peer:
        connection = KeepAliveConnection(
            "http", "127.0.0.1", peer.port, timeout=0.5, blocksize=65536
        )
        started = time.monotonic()
        with pytest.raises(
            TimeoutError, match=rf"127.0.0.1:{peer.port} did not answer within 0\.5 s"
        ):
            connection.exchange(
                "PUT", "/", headers={"Content-Length": str(size)}, body=lambda: Zeros(size)
            )
        assert time.monotonic() - started < 3


def test_a_full_backlog_is_a_connect_timeout():
    server = socket.create_server(("127.0.0.1", 0), backlog=0)
    held = []
    try:
        for _ in range(3):  # fill the accept queue: the next SYN is dropped
            pending = socket.socket()
            pending.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                pending.connect(server.getsockname())
            held.append(pending)
        time.sleep(0.05)
        port = server.getsockname()[1]
        connection = KeepAliveConnection("http", "127.0.0.1", port, timeout=0.3)
        with pytest.raises(TimeoutError, match=rf"could not connect to 127.0.0.1:{port} within"):
            connection.exchange("GET", "/", headers={})
    finally:
        for pending in held:
            pending.close()
        server.close()


def test_upload_gives_a_part_a_second_more_per_64_kib(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_TOKEN", "tok")
    path = tmp_path / "two-blocks.bin"
    data = os.urandom(2 * 64 * 1024)
    path.write_bytes(data)
    with FakePortal(len(data), len(data), data=data) as portal:
        portal.put_delay = 1.0  # within 0.5 s + 2 s for the part's 128 KiB
        result = upload(path, portal.url, "--timeout", "0.5", "--retries", "0")
    assert result.code == 0, result.err


def test_a_connect_error_that_is_no_database_error_raises_and_closes_the_gate(client, monkeypatch):
    from portal import dbgate

    monkeypatch.setattr(dbgate, "gate", dbgate.DatabaseGate(retry_seconds=60))

    def broken(alias="default"):
        raise RuntimeError("bug in the driver")

    monkeypatch.setattr(dbgate, "connect", broken)
    with pytest.raises(RuntimeError, match="bug in the driver"):
        client.get("/api/v1/uploads/sessions")
    assert not dbgate.gate.admit()


def test_upload_a_complete_session_is_not_sent_again(upload_file):
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, received=[1, 2, 3, 4], data=data) as portal:
        done = {"id": "s1", "status": "complete", "total_parts": 4, "chunk_size_bytes": 100}
        portal.script("POST", "sessions", (200, done))
        result = upload(upload_file, portal.url)
    assert result.code == 0, result.err
    assert "session s1 (existing): 4 parts of 100 bytes" in result.out
    assert "session s1 is already complete" in result.out
    assert [m for m, _, _ in portal.requests] == ["POST", "GET"]


def test_upload_a_failed_session_needs_another_key(upload_file):
    with FakePortal(305, 100) as portal:
        failed = {"id": "s1", "status": "failed", "total_parts": 4, "chunk_size_bytes": 100}
        portal.script("POST", "sessions", (200, failed))
        result = upload(upload_file, portal.url)
    assert result.code == 1
    assert "session s1 is failed; start a new one with another --idempotency-key" in result.err


def test_upload_a_new_session_says_new(upload_file):
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, data=data) as portal:
        result = upload(upload_file, portal.url, "--idempotency-key", "k1")
    assert "session s1 (new): 4 parts of 100 bytes" in result.out
    [(_, _, body)] = [r for r in portal.requests if r[0] == "POST" and r[1].endswith("sessions")]
    assert json.loads(body)["idempotency_key"] == "k1"


def test_the_derived_idempotency_key_follows_size_and_mtime(upload_file):
    from portal.management.commands.portal_upload import derived_idempotency_key

    first = derived_idempotency_key(upload_file)
    assert first.startswith("portal-upload-") and len(first) == len("portal-upload-") + 40
    assert derived_idempotency_key(upload_file) == first
    stat = upload_file.stat()
    os.utime(upload_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1000))
    touched = derived_idempotency_key(upload_file)
    assert touched != first
    upload_file.write_bytes(upload_file.read_bytes() + b"x")
    os.utime(upload_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1000))
    assert derived_idempotency_key(upload_file) not in (first, touched)


def test_token_sources(tmp_path, monkeypatch, capsys):
    from django.core.management.base import CommandError

    from portal.management.token_source import api_token

    monkeypatch.setenv("PORTAL_TOKEN", " env-token \n")
    assert api_token(None, None) == "env-token"
    assert capsys.readouterr().err == ""
    assert api_token("given", None) == "given"
    assert "--token puts the token on the command line" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.write_text("\n")
    empty.chmod(0o600)
    with pytest.raises(CommandError, match="is empty") as error:
        api_token(None, str(empty))
    assert error.value.returncode == 2
    with pytest.raises(CommandError, match="cannot read it") as error:
        api_token(None, str(tmp_path / "missing"))
    assert error.value.returncode == 2
    monkeypatch.setenv("PORTAL_TOKEN", "  ")
    with pytest.raises(CommandError, match="no API token") as error:
        api_token(None, None)
    assert error.value.returncode == 2


def test_create_token_for_an_unknown_user_is_a_usage_error(db):
    result = run_command("portal_create_token", "nobody")
    assert result.code == 2
    assert "no user 'nobody'; pass --create-user to create it" in result.err


def test_a_dispatched_event_logs_its_attempt(runner, runner_settings, caplog):
    caplog.set_level(logging.INFO, logger="portal")
    [event] = make_events(1, attempts=2)
    outbox.dispatch_due(outbox.DispatchConfig.from_settings())
    [record] = events_named(caplog, "outbox.dispatched")
    assert (record.event_id, record.attempt) == (str(event.pk), 3)
    assert record.getMessage() == "delivered file.uploaded (HTTP 200)"


class Silent(LoopbackServer):
    """Accepts a connection and says nothing (no TLS handshake)."""

    def answer(self, conn):
        while not self._stop.is_set():
            time.sleep(0.02)


def test_a_silent_https_peer_is_a_tls_timeout():
    with Silent() as peer:
        connection = KeepAliveConnection("https", "127.0.0.1", peer.port, timeout=0.3)
        with pytest.raises(TimeoutError, match=r"TLS handshake with 127.0.0.1:\d+ did not finish"):
            connection.exchange("GET", "/", headers={})
