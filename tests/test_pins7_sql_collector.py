"""The job series of ``/metrics`` (``portal.metrics.collector``) before a job's first
finished run and for a run that took no time (a duration is shown exactly when a run
finished, 0 s included), the collector's own cache age, and the times it reports."""

from datetime import UTC, datetime, timedelta

import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY

from portal.metrics import collector
from portal.models import JobRun
from tests.metrics_helpers import (
    metrics_settings,  # noqa: F401  (autouse here)
    scrape,
    value,
)

NOW = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
DURATION = "portal_job_last_run_duration_seconds"


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


def test_a_collectors_own_cache_age_is_used(db):
    """``PortalCollector(cache_seconds=...)`` keeps its figures that long, not the module's
    default (5 s); 0 turns the cache off."""
    with time_machine.travel(NOW, tick=False) as traveller:
        slow = collector.PortalCollector(cache_seconds=30)
        slow.collect()
        traveller.shift(timedelta(seconds=collector.CACHE_SECONDS + 10))
        with CaptureQueriesContext(connection) as cached:
            slow.collect()
        traveller.shift(timedelta(seconds=16))
        with CaptureQueriesContext(connection) as expired:
            slow.collect()
        off = collector.PortalCollector(cache_seconds=0)
        off.collect()
        with CaptureQueriesContext(connection) as uncached:
            off.collect()

    assert len(cached) == 0
    assert len(expired) > 0
    assert len(uncached) > 0


def test_the_database_read_time_and_request_durations_are_measured(db, client):
    """The query-time gauge and the request-duration histogram carry the measured time
    (always above 0), not a constant."""
    labels = {"view": "health", "method": "GET"}
    name = "portal_http_request_duration_seconds_sum"
    before = REGISTRY.get_sample_value(name, labels) or 0.0

    assert client.get("/health").status_code == 200
    samples = scrape(client)

    assert REGISTRY.get_sample_value(name, labels) > before
    assert value(samples, "portal_metrics_database_query_seconds") > 0
