"""Pins for the job-run records, sixth round (issue #31): which rows a run closes as
abandoned, and what a run records (``portal.services.jobs``)."""

import json
from datetime import timedelta

from django.utils import timezone

from portal.models import JobRun
from tests.commands import run_command

Outcome = JobRun.Outcome


def test_a_cleanup_closes_only_its_own_jobs_running_rows_as_abandoned(portal_storage, db):
    """Holding the job's lock proves the other ``running`` cleanup rows dead; rows that
    already ended keep their real outcome (the history cron's heartbeat shows), and other
    jobs' running rows are not this lock's business."""
    earlier = timezone.now() - timedelta(hours=1)
    rows = {
        outcome: JobRun.objects.create(
            job="portal_cleanup", started_at=earlier, finished_at=earlier, outcome=outcome
        )
        for outcome in (Outcome.OK, Outcome.PARTIAL, Outcome.FAILED, Outcome.SKIPPED)
    }
    dead = JobRun.objects.create(job="portal_cleanup", started_at=earlier)
    other = JobRun.objects.create(job="portal_dispatch", started_at=earlier)

    result = run_command("portal_cleanup", "--json")

    assert result.code == 0, result.err
    assert json.loads(result.out)["abandoned_runs_closed"] == 1
    for outcome, row in rows.items():
        row.refresh_from_db()
        assert (row.outcome, row.finished_at) == (outcome, earlier)
    dead.refresh_from_db()
    other.refresh_from_db()
    assert dead.outcome == Outcome.ABANDONED and dead.finished_at > earlier
    assert (other.outcome, other.finished_at) == (Outcome.RUNNING, None)


def test_prune_closes_an_abandoned_run_at_the_runs_own_instant(portal_storage, db):
    """The prune step works as of its run's ``now``: the abandoned row's end is that
    instant (what the step counted against), not whenever the update happened to run."""
    from portal.services import cleanup
    from portal.services.jobs import ABANDONED_AFTER

    as_of = timezone.now() - timedelta(hours=3)
    dead = JobRun.objects.create(
        job="portal_dispatch", started_at=as_of - ABANDONED_AFTER - timedelta(seconds=1)
    )

    result = cleanup.prune_old_failed_sessions(cleanup.CleanupOptions(now=as_of))

    assert result.counts["job_runs_abandoned"] == 1
    dead.refresh_from_db()
    assert (dead.outcome, dead.finished_at) == (Outcome.ABANDONED, as_of)
