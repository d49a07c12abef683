"""The job series of ``/metrics`` (``portal.metrics.collector``) before a job's first
finished run and for a run that took no time: a duration is shown exactly when a run
finished, 0 s included."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from portal.metrics import collector
from portal.models import JobRun
from tests.metrics_helpers import TOKEN, scrape, value

NOW = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
DURATION = "portal_job_last_run_duration_seconds"


@pytest.fixture(autouse=True)
def metrics_settings(settings):
    settings.PORTAL_METRICS_TOKEN = TOKEN
    collector.collector.clear()
    yield settings
    collector.collector.clear()


def test_no_duration_before_the_first_finished_run(db, client):
    """A job that never finished a run has no duration series (absent, not a made-up 0
    that a "took too long/too short" alert would read); a running run changes nothing."""
    with time_machine.travel(NOW, tick=False):
        JobRun.objects.create(
            job="portal_cleanup", outcome=JobRun.Outcome.RUNNING, started_at=NOW, counts={}
        )
        samples = scrape(client)

    for command in ("portal_cleanup", "portal_dispatch"):
        assert value(samples, DURATION, command=command) is None
        assert value(samples, "portal_job_last_run_outcome", command=command, outcome="ok") is None
    assert value(samples, "portal_job_running", command="portal_cleanup") == 1


def test_a_run_that_took_no_time_shows_a_duration_of_zero(db, client):
    """A finished run of 0 s still has its duration series (0), beside a job with none."""
    started = NOW - timedelta(minutes=2)
    JobRun.objects.create(
        job="portal_dispatch",
        outcome=JobRun.Outcome.OK,
        started_at=started,
        finished_at=started,
        counts={},
    )
    with time_machine.travel(NOW, tick=False):
        samples = scrape(client)

    assert value(samples, DURATION, command="portal_dispatch") == 0
    assert value(samples, DURATION, command="portal_cleanup") is None
    assert value(samples, "portal_job_last_run_timestamp_seconds", command="portal_dispatch") == (
        started.timestamp()
    )
