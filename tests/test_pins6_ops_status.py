"""``/status`` job freshness (``portal.health.checks.JobFreshness``): which run counts."""

from datetime import timedelta

import time_machine
from django.utils import timezone

from portal.models import JobRun


def run(job, outcome, ago, took=timedelta(seconds=30)):
    now = timezone.now()
    return JobRun.objects.create(
        job=job, outcome=outcome, started_at=now - ago, finished_at=now - ago + took
    )


def test_the_newest_successful_run_counts_not_an_older_one_nor_a_newer_failure(
    staff, portal_storage, no_probe_cache
):
    """Runs of days ago and a failed run a minute ago do not hide the partial run of ten
    minutes ago: it is the last success, and only this job's runs are read."""
    with time_machine.travel(timezone.now(), tick=False):
        run("portal_cleanup", JobRun.Outcome.OK, timedelta(days=3))
        recent = run("portal_cleanup", JobRun.Outcome.PARTIAL, timedelta(minutes=10))
        run("portal_cleanup", JobRun.Outcome.OK, timedelta(days=2))
        run("portal_cleanup", JobRun.Outcome.FAILED, timedelta(minutes=1))
        run("portal_dispatch", JobRun.Outcome.OK, timedelta(seconds=5))
        jobs = staff.get("/status?format=json").json()["jobs"]
    cleanup = jobs["portal_cleanup"]
    assert cleanup["state"] == "ok"
    assert cleanup["age_seconds"] == 570  # finished 30 s after it started, 10 min ago
    assert cleanup["last_success_at"] == recent.finished_at.isoformat()
