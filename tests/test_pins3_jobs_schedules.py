"""Pins for the jobs area, third round (issue #31): each cron job's expected interval
(``portal.services.jobs.JOB_SCHEDULES``) as the metrics export it, and the host a run
records."""

import socket

import pytest

from portal.metrics import collector
from portal.models import JobRun
from tests.commands import run_command
from tests.metrics_helpers import TOKEN, scrape, value


@pytest.mark.usefixtures("portal_storage")
def test_every_job_exports_the_interval_of_the_shipped_crontab(db, client, settings):
    """Alerts compare a job's last run with its interval: finalize and dispatch run every
    minute, cleanup every 15 minutes, as the shipped crontab starts them."""
    settings.PORTAL_METRICS_TOKEN = TOKEN
    collector.collector.clear()
    try:
        samples = scrape(client)
    finally:
        collector.collector.clear()
    intervals = {
        job: value(samples, "portal_job_interval_seconds", command=job)
        for job in ("portal_cleanup", "portal_dispatch", "portal_finalize")
    }
    assert intervals == {"portal_cleanup": 900, "portal_dispatch": 60, "portal_finalize": 60}


@pytest.mark.usefixtures("portal_storage")
def test_a_recorded_run_names_the_host_it_ran_on(db):
    """With cron on every host, /status tells the runs apart by their host."""
    assert run_command("portal_cleanup", "--only", "stale").code == 0
    [row] = JobRun.objects.filter(job="portal_cleanup")
    assert row.host == socket.gethostname()[:255] != ""
    assert row.outcome == JobRun.Outcome.OK
