"""Pins (issue #31, round 4) for the /status job freshness of a run without an end time."""

from datetime import timedelta

import time_machine
from django.utils import timezone

from portal.models import JobRun


def test_a_successful_run_without_an_end_time_counts_from_its_start(
    staff, portal_storage, no_probe_cache
):
    """A run recorded ok with no ``finished_at`` (an older row, a run cut short while being
    written) still proves the job ran: its start is the last success, not "never"."""
    now = timezone.now()
    started = now - timedelta(minutes=7)
    JobRun.objects.create(job="portal_cleanup", started_at=started, outcome="ok", counts={})
    with time_machine.travel(now, tick=False):
        job = staff.get("/status?format=json").json()["jobs"]["portal_cleanup"]
    assert (job["state"], job["last_success_at"], job["age_seconds"]) == (
        "ok",
        started.isoformat(),
        420,
    )
