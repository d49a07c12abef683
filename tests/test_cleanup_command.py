"""``manage.py portal_cleanup``: one run as cron runs it (a process: exit code, JSON lines);
its options, outcomes and failures in-process (``tests.commands``)."""

import json
import logging
import os
import signal
import subprocess
from datetime import timedelta

import pytest
from django.utils import timezone

from portal.models import JobRun, UploadPart, UploadSession
from tests.commands import run_command, usage_error
from tests.conftest import PYTHON, ROOT, apply_storage
from tests.processes import run_manage
from tests.seed import (
    Status,
    bulk_seed,
    make_session,
    put_untracked_temp,
    seed_owner,
    snapshot,
    storage_listing,
    temp_keys_of,
)


class Run:
    """A run's exit code, its ``--json`` summary, and its log events (as dicts)."""

    def __init__(self, returncode, stdout, stderr, records=()):
        self.returncode, self.stderr = returncode, stderr
        self.lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
        self.records = [*self.lines, *records]

    @property
    def summary(self):
        summaries = [line for line in self.lines if line.get("command") == "portal_cleanup"]
        assert len(summaries) == 1, json.dumps(self.lines, indent=1)[-3000:]
        (summary,) = summaries
        return summary

    def events(self, name):
        return [record for record in self.records if record.get("event") == name]


@pytest.fixture
def cleanup(portal_storage, caplog):
    """``portal_cleanup --json ARGS`` in-process, its events from the log records."""
    caplog.set_level(logging.INFO, logger="portal")

    def run(*args):
        caplog.clear()
        result = run_command("portal_cleanup", "--json", *args)
        return Run(result.code, result.out, result.err, [vars(r) for r in caplog.records])

    return run


def test_run_prints_one_summary_and_logs_each_step(subprocess_env, user):
    """The process boundary: exit code, the summary and JSON log lines on stdout."""
    expired = make_session(user, total_parts=2, expires_at=timezone.now() - timedelta(minutes=1))
    make_session(user, status=Status.COMPLETE, total_parts=2)
    proc = run_manage(subprocess_env, "portal_cleanup", "--json")
    run = Run(proc.returncode, proc.stdout, proc.stderr)
    assert run.returncode == 0, run.stderr
    summary = run.summary
    assert summary["outcome"] == "ok" and summary["failed"] == 0
    assert summary["dry_run"] is False and summary["stopped_early"] is False
    assert list(summary["steps"]) == ["stale", "orphans", "sweep", "prune"]
    assert summary["steps"]["stale"]["counts"]["sessions_expired"] == 1
    assert summary["steps"]["orphans"]["counts"]["objects_deleted"] == 4
    assert [e["step"] for e in run.events("cleanup.step")] == ["stale", "orphans", "sweep", "prune"]
    (finished,) = run.events("cleanup.finished")
    assert finished["job"] == "portal_cleanup" and finished["outcome"] == "ok"
    assert run.events("session.expired")[0]["count"] == 1
    expired.refresh_from_db()
    assert expired.status == Status.FAILED
    assert storage_listing()["temp"] == []
    job = JobRun.objects.get(job="portal_cleanup")
    assert job.outcome == JobRun.Outcome.OK and job.finished_at is not None
    assert job.counts["orphans"]["objects_deleted"] == 4


def test_failed_local_deletion_exits_1_and_the_next_run_finishes(cleanup, settings, user):
    if settings.PORTAL_STORAGE != "local":
        pytest.skip("the local variant of the outage; S3 has its own test")
    from portal import storage

    session = make_session(user, status=Status.ABORTED, total_parts=3)
    stuck = temp_keys_of(session)[0]
    path = storage.temp_storage().path(stuck)
    os.unlink(path)
    os.mkdir(path)

    run = cleanup()
    assert run.returncode == 1
    assert run.summary["outcome"] == "partial"
    assert run.summary["steps"]["orphans"]["failed"] == 1
    assert stuck in run.summary["steps"]["orphans"]["failures"]
    assert temp_keys_of(session) == [stuck]
    assert JobRun.objects.get().outcome == JobRun.Outcome.PARTIAL

    os.rmdir(path)
    again = cleanup()
    assert again.returncode == 0, again.stderr
    assert temp_keys_of(session) == []


@pytest.mark.s3
def test_s3_outage_exits_1_keeps_keys_and_the_next_run_finishes(
    cleanup, settings, data_dir, moto_s3_factory, user
):
    server = moto_s3_factory()
    apply_storage(settings, "s3", data_dir, s3=server, bucket=server.new_bucket())
    session = make_session(user, status=Status.COMPLETE, total_parts=3)
    keys = sorted(temp_keys_of(session))

    server.stop()
    run = cleanup()
    assert run.returncode == 1, run.lines
    assert run.summary["steps"]["orphans"]["failed"] == 3
    assert sorted(temp_keys_of(session)) == keys

    server.start()
    assert sorted(storage_listing()["temp"]) == keys
    again = cleanup()
    assert again.returncode == 0, again.stderr
    assert temp_keys_of(session) == []
    assert storage_listing()["temp"] == []


def test_dry_run_changes_nothing(cleanup, settings, user):
    now = timezone.now()
    old = now - timedelta(days=settings.PORTAL_FAILED_SESSION_RETENTION_DAYS + 1)
    make_session(user, total_parts=2, expires_at=now - timedelta(minutes=5))
    make_session(user, status=Status.COMPLETE, total_parts=2)
    make_session(user, status=Status.FAILED, received=[], finished_at=old)
    make_session(user, total_parts=1)
    put_untracked_temp(now - timedelta(minutes=settings.PORTAL_ORPHAN_GRACE_MINUTES + 5))
    JobRun.objects.create(job="portal_dispatch", started_at=now - timedelta(days=365))
    before = snapshot()

    run = cleanup("--dry-run")

    assert run.returncode == 0, run.stderr
    assert snapshot() == before
    summary = run.summary
    assert summary["dry_run"] is True
    counts = {name: step["counts"] for name, step in summary["steps"].items()}
    assert counts["stale"]["sessions_expired"] == 1
    assert counts["orphans"]["objects_deleted"] == 4
    assert counts["sweep"]["objects_deleted"] == 1
    assert counts["prune"]["sessions_pruned"] == 1
    assert counts["prune"]["job_runs_pruned"] == 1


def test_a_held_lock_means_skipped_and_exit_0(cleanup, lock_holder, user):
    make_session(user, status=Status.ABORTED, total_parts=1)
    proc = lock_holder("portal_cleanup")
    run = cleanup()
    assert run.returncode == 0, run.stderr
    assert run.summary["outcome"] == "skipped"
    assert len(run.events("cleanup.skipped")) == 1
    assert not run.events("cleanup.step") and not run.events("cleanup.finished")
    assert UploadPart.objects.exclude(temp_key="").count() == 1
    assert JobRun.objects.get().outcome == JobRun.Outcome.SKIPPED

    proc.send_signal(signal.SIGKILL)
    proc.wait()
    after = cleanup()
    assert after.returncode == 0
    assert after.summary["outcome"] == "ok"
    assert UploadPart.objects.exclude(temp_key="").count() == 0


@pytest.mark.slow
def test_a_cleanup_killed_mid_run_releases_the_lock_and_the_next_run_finishes(
    cleanup, subprocess_env, user
):
    bulk_seed(
        seed_owner(), n=400, parts_per_session=1, expires_at=timezone.now() - timedelta(hours=1)
    )
    proc = subprocess.Popen(
        [PYTHON, "manage.py", "portal_cleanup", "--batch-size", "1", "-v", "2"],
        cwd=ROOT,
        env=subprocess_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr.readline().startswith("cleanup stale: batch 1")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert UploadSession.objects.filter(status__in=UploadSession.OPEN_STATUSES).exists()

    [killed] = JobRun.objects.filter(job="portal_cleanup")
    assert killed.outcome == JobRun.Outcome.RUNNING and killed.finished_at is None

    run = cleanup()
    assert run.returncode == 0, run.stderr
    assert run.summary["outcome"] == "ok"
    assert not UploadSession.objects.filter(status__in=UploadSession.OPEN_STATUSES).exists()
    assert not UploadPart.objects.exclude(temp_key="").exists()
    assert storage_listing()["temp"] == []
    # The lock proved the killed run dead: its row is closed, not "running" forever.
    assert run.summary["abandoned_runs_closed"] == 1
    killed.refresh_from_db()
    assert killed.outcome == JobRun.Outcome.ABANDONED and killed.finished_at is not None
    outcomes = JobRun.objects.filter(job="portal_cleanup").values_list("outcome", flat=True)
    assert sorted(outcomes) == [JobRun.Outcome.ABANDONED, JobRun.Outcome.OK]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--batch-size", "0"], "argument --batch-size: '0' is not between 1 and"),
        (["--only", "everything"], "argument --only: invalid choice: 'everything'"),
        (["--max-seconds", "-1"], "argument --max-seconds: '-1' is not above 0"),
    ],
)
def test_bad_usage_exits_2(args, says):
    code, err = usage_error("portal_cleanup", *args)
    assert code == 2
    assert "manage.py portal_cleanup: error: " + says in err


def test_max_seconds_stops_early_with_exit_0(cleanup, user):
    bulk_seed(
        seed_owner(), n=5, parts_per_session=1, expires_at=timezone.now() - timedelta(hours=1)
    )
    run = cleanup("--max-seconds", "0.000001")
    assert run.returncode == 0, run.stderr
    assert run.summary["stopped_early"] is True
    assert JobRun.objects.get().outcome == JobRun.Outcome.PARTIAL
    # One outcome for the run, wherever it is reported.
    assert run.summary["outcome"] == JobRun.Outcome.PARTIAL
    (finished,) = run.events("cleanup.finished")
    assert finished["outcome"] == JobRun.Outcome.PARTIAL


def test_only_runs_the_named_steps_and_v2_shows_progress(cleanup, user):
    make_session(user, status=Status.ABORTED, total_parts=2)
    make_session(user, total_parts=1, expires_at=timezone.now() - timedelta(minutes=1))
    run = cleanup("--only", "orphans", "-v", "2")
    assert run.returncode == 0, run.stderr
    assert list(run.summary["steps"]) == ["orphans"]
    assert run.summary["steps"]["orphans"]["counts"]["objects_deleted"] == 2
    assert "cleanup orphans: batch 1 " in run.stderr
    assert UploadSession.objects.filter(status=Status.IN_PROGRESS).count() == 1


def failed_session_with_final_object(user):
    """A failed session past retention whose late finalize left its final object behind."""
    from portal import storage

    long_ago = timezone.now() - timedelta(days=365)
    session = make_session(user, status=Status.FAILED, received=[], finished_at=long_ago)
    leftover = storage.write_final(
        [b"partial"], file_id=session.file_id, now=session.file.created_at
    )
    return session, leftover.key


def test_prune_keeps_the_rows_when_the_final_object_cannot_be_deleted_local(
    cleanup, settings, user, data_dir
):
    if settings.PORTAL_STORAGE != "local":
        pytest.skip("a local-disk fault; the S3 outage has its own test")
    session, key = failed_session_with_final_object(user)
    path = data_dir / "final" / key
    path.unlink()
    path.mkdir()  # a directory where the object was: unlink fails (EISDIR), even as root
    (path / "inside").write_text("x")

    run = cleanup("--only", "prune")

    assert run.returncode == 1, run.stderr
    prune = run.summary["steps"]["prune"]
    assert prune["failed"] == 1 and prune["counts"]["sessions_pruned"] == 0
    assert list(prune["failures"]) == [key]
    assert UploadSession.objects.filter(pk=session.pk).exists()  # the row still tracks it
    assert JobRun.objects.get().outcome == JobRun.Outcome.PARTIAL

    (path / "inside").unlink()
    path.rmdir()  # fixed: the next run deletes what is there and then the rows
    again = cleanup("--only", "prune")
    assert again.returncode == 0, again.stderr
    assert again.summary["steps"]["prune"]["counts"]["sessions_pruned"] == 1
    assert not UploadSession.objects.filter(pk=session.pk).exists()


@pytest.mark.s3
def test_prune_keeps_the_rows_when_s3_is_down(
    transactional_db, user, settings, data_dir, moto_s3_factory
):
    from portal import storage

    s3 = moto_s3_factory()
    bucket = s3.new_bucket()
    apply_storage(settings, "s3", data_dir, s3=s3, bucket=bucket)
    session, key = failed_session_with_final_object(user)
    s3.stop()

    result = cleanup_in_process_prune()

    assert result.failed == 1 and result.counts["sessions_pruned"] == 0
    assert UploadSession.objects.filter(pk=session.pk).exists()
    s3.start()
    assert storage.final_storage().exists(key)
    again = cleanup_in_process_prune()
    assert (again.failed, again.counts["sessions_pruned"]) == (0, 1)
    assert not storage.final_storage().exists(key)
    assert not UploadSession.objects.filter(pk=session.pk).exists()


def cleanup_in_process_prune():
    from portal.services import cleanup as service

    return service.prune_old_failed_sessions()
