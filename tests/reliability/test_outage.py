"""Outage: storage and the database fail while the jobs run; the next run completes.

Each test starts the real command (``python manage.py ...``, as cron does), waits until
it is mid-run (its ``-v 2`` progress lines, or the runner's request count), then breaks
something for real:

- storage: the S3 endpoint (a private moto server) stops; on local storage the temp root
  is swapped for a plain file, so every delete fails with ``NotADirectoryError``;
- database (PostgreSQL): every other backend of the test database is terminated with
  ``pg_terminate_backend``, again and again until the command exits.

The command must exit non-zero with a clear message (an ERROR JSON record naming what
failed), lose nothing (invariants 1-5 with the reported failures, no live part's object
gone), and the next run, with the fault gone, must exit 0 and restore 1-5 fully.
"""

import os
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from portal.models import JobRun, OutboxEvent, UploadPart, UploadSession
from portal.services.outbox import LEASE_MARGIN_SECONDS
from tests.conftest import TEST_STORAGE, apply_storage
from tests.reliability import invariants
from tests.reliability.commands import Command, run_command
from tests.reliability.world import ObjectWriter, missing_survivors, seed_events, seed_world
from tests.runner import RunnerServer

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

SECRET = "outage-runner-secret"


# --- storage -------------------------------------------------------------------------------


class StorageOutage:
    """Takes the suite's storage backend away and brings it back."""

    def __init__(self, settings, data_dir, env, moto_s3_factory):
        self.env = env
        self.server = None
        if TEST_STORAGE == "s3":
            self.server = moto_s3_factory()
            bucket = self.server.new_bucket()
            self.env = {
                **env,
                **apply_storage(settings, "s3", data_dir, s3=self.server, bucket=bucket),
            }
            self.env.update({"AWS_S3_CONNECT_TIMEOUT_SECONDS": "1", "AWS_S3_MAX_ATTEMPTS": "1"})
        self.temp_root = data_dir / "temp"
        self.parked = data_dir / "temp.parked"

    @property
    def reasons(self):
        """What the failure reasons in the report may name.

        Locally the swap is two steps (rename the root away, then put a file in its place);
        a delete that lands between them sees the root missing, which must also fail.
        """
        if self.server:
            return ("EndpointConnectionError",)
        return ("NotADirectoryError", "storage root is missing")

    def begin(self):
        if self.server:
            self.server.stop()
            return
        os.rename(self.temp_root, self.parked)
        self.temp_root.write_bytes(b"not a directory")

    def end(self):
        if self.server:
            self.server.start()
            return
        self.temp_root.unlink()
        os.rename(self.parked, self.temp_root)


def nothing_lost(world):
    return [
        *invariants.open_sessions_past_expiry(),
        *invariants.lost_live_parts(),
        *invariants.complete_sessions_without_file(),
        *invariants.events_not_delivered(settled=False, expected=world.pending_events),
        *missing_survivors(world.live_sessions, world.complete_sessions),
    ]


def terminal_parts_holding_keys():
    return set(
        UploadPart.objects.exclude(temp_key="")
        .filter(session__status__in=UploadSession.TERMINAL_STATUSES)
        .values_list("temp_key", flat=True)
    )


def test_storage_outage_mid_cleanup_exits_1_loses_nothing_and_the_next_run_completes(
    subprocess_env, settings, data_dir, moto_s3_factory, owner, report
):
    outage = StorageOutage(settings, data_dir, subprocess_env, moto_s3_factory)
    world = seed_world(owner, 3)
    command = Command(outage.env, "portal_cleanup", "--json", "-v", "2", "--batch-size", "10")
    command.wait_for_stderr("cleanup orphans: batch 1 ")
    outage.begin()
    try:
        code = command.finish()
    finally:
        outage.end()

    assert code == 1, command.stdout[-3000:]
    summary = command.summary()
    assert summary["outcome"] == "partial" and summary["failed"] > 0
    [error] = command.records(level="ERROR")
    assert error["exit_code"] == 1
    assert "deletion(s) failed and stay tracked; the next run retries them" in error["message"]
    reasons = [
        reason
        for step in command.records(event="cleanup.step")
        for reason in step.get("failures", {}).values()
    ]
    assert reasons and all(
        any(expected in reason for expected in outage.reasons) for reason in reasons
    ), reasons
    assert JobRun.objects.get(job="portal_cleanup").outcome == JobRun.Outcome.PARTIAL
    # Nothing lost: what failed stays tracked (no more than were reported), sessions
    # expired before the outage, live parts, stored files and events are whole. (Untracked
    # objects the sweep could not reach wait for the next run.)
    held = terminal_parts_holding_keys()
    assert 0 < len(held) <= summary["failed"]
    during = nothing_lost(world)
    assert during == [], invariants.summarize(during)

    code, again = run_command(outage.env, "portal_cleanup", "--json")
    assert code == 0, again.stdout[-3000:]
    assert again.summary()["outcome"] == "ok"
    after = invariants.check_all(expected_events=world.pending_events)
    report(
        "outage storage/cleanup",
        failed_deletions=summary["failed"],
        held_keys=len(held),
        exit_codes="1->0",
        violations=len(during) + len(after),
    )
    assert after == [], invariants.summarize(after)


def test_sweep_during_a_local_storage_outage_reports_the_failure(subprocess_env, data_dir, owner):
    if TEST_STORAGE == "s3":
        pytest.skip("local storage only: S3 listing errors are reported as '(listing)'")
    old = timezone.now() - timedelta(minutes=settings.PORTAL_ORPHAN_GRACE_MINUTES + 30)
    ObjectWriter().put("temp", "ab/" + "0" * 32 + "-000001-" + "0" * 12, b"x", modified_at=old)
    outage = StorageOutage(settings, data_dir, subprocess_env, None)
    outage.begin()
    try:
        code, command = run_command(subprocess_env, "portal_cleanup", "--only", "sweep", "--json")
    finally:
        outage.end()
    assert code == 1, command.stdout[-2000:]
    assert "(listing)" in command.summary()["steps"]["sweep"]["failures"]


# --- database ------------------------------------------------------------------------------


def terminate_other_backends():
    """Drop every other connection to the test database, as a failover or a DBA would."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


# What libpq says, depending on where the client was when its backend was terminated.
CONNECTION_DROPPED = (
    "terminating connection",
    "server closed the connection",
    "connection already closed",
    "consuming input failed",
    "no connection to the server",
)


def assert_database_error(record, job):
    """One ERROR record naming the job, the error class and the server's reason."""
    assert record["message"] == f"{job} failed" and record["exit_code"] == 1, record
    assert record["job"] == job and record["run_id"], record
    assert record["exception"]["type"] in ("OperationalError", "InterfaceError"), record
    message = record["exception"]["message"]
    assert any(words in message for words in CONNECTION_DROPPED), record


def keep_terminating(command, timeout=60):
    """Terminate the command's connections until it exits; how many were dropped."""
    dropped = 0
    deadline = time.monotonic() + timeout
    while command.proc.poll() is None:
        assert time.monotonic() < deadline, "the command outlived its dropped connections"
        dropped += terminate_other_backends()
        time.sleep(0.05)
    return dropped


def test_database_dropping_connections_mid_cleanup_then_the_next_run_completes(
    postgres_only, subprocess_env, owner, report
):
    world = seed_world(owner, 5)
    command = Command(subprocess_env, "portal_cleanup", "--json", "-v", "2", "--batch-size", "5")
    command.wait_for_stderr("cleanup stale: batch 1 ")
    dropped = keep_terminating(command)
    code = command.finish()

    assert code == 1, command.stdout[-3000:]
    [error] = command.records(level="ERROR")
    assert_database_error(error, "portal_cleanup")
    lost = [
        *invariants.lost_live_parts(),
        *invariants.complete_sessions_without_file(),
        *invariants.events_not_delivered(settled=False, expected=world.pending_events),
        *missing_survivors(world.live_sessions, world.complete_sessions),
    ]
    assert lost == [], invariants.summarize(lost)

    code, again = run_command(subprocess_env, "portal_cleanup", "--json")
    assert code == 0, again.stdout[-3000:]
    after = invariants.check_all(expected_events=world.pending_events)
    report(
        "outage database/cleanup",
        connections_dropped=dropped,
        exit_codes="1->0",
        violations=len(after),
    )
    assert after == [], invariants.summarize(after)


def test_database_dropping_connections_mid_dispatch_then_the_next_run_delivers_all(
    postgres_only, subprocess_env, zygote, owner, report
):
    with RunnerServer("ok", secret=SECRET, delay=0.002) as runner:
        env = {
            **subprocess_env,
            "PORTAL_RUNNER_ENDPOINT": runner.url,
            "PORTAL_RUNNER_AUTH_SECRET": SECRET,
            "PORTAL_RUNNER_TIMEOUT_SECONDS": "1",
        }
        events = [str(pk) for pk in seed_events(1500)]
        command = Command(env, "portal_dispatch", "--json")
        runner.wait_for_requests(1, timeout=60)
        dropped = keep_terminating(command)
        code = command.finish()
        assert code == 1, command.stdout[-3000:]
        [error] = command.records(level="ERROR")
        assert_database_error(error, "portal_dispatch")
        left = OutboxEvent.objects.exclude(status=OutboxEvent.Status.DELIVERED).count()
        assert left > 0

        # The next cron run after the dead run's lease (time-machine in a forked child).
        lease = 2 * (1 + LEASE_MARGIN_SECONDS)
        again = zygote(env).run("portal_dispatch", "--json", travel_seconds=lease + 1)
        assert again.exit == 0, again.stdout[-3000:]
        counts = runner.counts()
    after = invariants.events_not_delivered(runner_counts=counts, expected=events)
    report(
        "outage database/dispatch",
        connections_dropped=dropped,
        left_after_outage=left,
        exit_codes="1->0",
        violations=len(after),
    )
    assert after == [], invariants.summarize(after)
