"""Pins (issue #31, round 5) for /status, its checks and the job figures: boundaries and
data where a plausible wrong implementation used to pass too."""

from datetime import UTC, datetime, timedelta

import time_machine
from django.utils import timezone

from portal.metrics import figures
from portal.models import JobRun
from portal.services.status import page, trend
from tests.status_helpers import (  # noqa: F401  (fresh_probe_cache: autouse here)
    MIB,
    completed_upload,
    disk,
    dispatch_run,
    fresh_probe_cache,
    run,
)

NOW = datetime(2026, 12, 7, 14, 30, tzinfo=UTC)


def test_an_hour_is_settled_exactly_settled_after_its_end(db, django_user_model):
    """At 15:05 the 14:00 hour ended ``SETTLED_AFTER`` ago: it is cached then, so a view at
    the same instant does not read it again (each settled hour is counted once)."""
    owner = django_user_model.objects.create_user("owner")
    at = datetime(2026, 12, 7, 15, 5, tzinfo=UTC)
    completed_upload(owner, datetime(2026, 12, 7, 14, 20, tzinfo=UTC), 1024)
    assert {h.hour: n for h, n, _ in trend.hourly_uploads(at)}[14] == 1
    completed_upload(owner, datetime(2026, 12, 7, 14, 40, tzinfo=UTC), 1024)
    assert {h.hour: n for h, n, _ in trend.hourly_uploads(at)}[14] == 1


def test_the_latest_dispatch_run_always_has_its_time_under_its_bar(db):
    """With 12 runs every second bar is labelled, counted back from the latest: the run the
    operator looks at first carries its time, the oldest (an odd step away) none."""
    for minute in range(12):
        dispatch_run(NOW - timedelta(minutes=11 - minute), backlog=minute)
    svg = str(trend.trend_context(NOW)["backlog_svg"])
    assert ">14:30</text>" in svg and ">14:20</text>" in svg
    assert ">14:19</text>" not in svg and ">14:29</text>" not in svg


def test_a_run_ending_before_it_started_lasted_zero_seconds(db):
    """Hosts' clocks differ: a run whose ``finished_at`` precedes ``started_at`` reports a
    duration of 0, never a negative one a dashboard would plot below the axis."""
    started = timezone.now() - timedelta(minutes=1)
    JobRun.objects.create(
        job="portal_cleanup",
        started_at=started,
        finished_at=started - timedelta(seconds=5),
        outcome=JobRun.Outcome.OK,
        counts={},
    )
    assert figures.job_figures("portal_cleanup").last_run_seconds == 0.0


def test_free_space_exactly_at_the_limit_still_accepts_uploads():
    """Uploads are refused *below* the limit: a volume with exactly that much free is only
    below the warning level (the page must not claim uploads are refused)."""
    section = page.disk_section("portal_temp", disk(state="warning", free=10 * MIB))
    assert section["reason"] == "free space is below the warning level; new uploads stop soon."


def test_an_older_failed_run_is_not_reported_as_the_last_one(db):
    """The reason names a failure only when the latest run failed; a job that failed once
    and succeeded since is fine and must not read "the last run failed"."""
    ok = run("portal_cleanup", JobRun.Outcome.OK, timedelta(minutes=2))
    failed = run("portal_cleanup", JobRun.Outcome.FAILED, timedelta(minutes=17))
    section = page.job_section(
        "portal_cleanup",
        {"state": "ok", "last_success_at": ok.finished_at},
        [ok, failed],
        timezone.now(),
    )
    assert "failed" not in section["reason"]
    assert section["reason_tail"] == ""


def test_a_long_run_counts_from_its_end_for_freshness(db, staff, no_probe_cache, portal_storage):
    """A cleanup that ran 39 minutes and ended a minute ago is fresh: freshness counts from
    the end of the last success, not from its start (40 min > twice 15 min)."""
    run("portal_cleanup", JobRun.Outcome.OK, timedelta(minutes=40), took=timedelta(minutes=39))
    body = staff.get("/status?format=json").json()
    assert body["jobs"]["portal_cleanup"]["state"] == "ok"


def test_a_job_exactly_twice_its_period_old_is_still_fresh(
    db, staff, no_probe_cache, portal_storage
):
    """The job warns *after* two periods without a success ("It warns after 30 min"): at
    exactly 30 minutes it is still ok."""
    with time_machine.travel(NOW, tick=False):
        run("portal_cleanup", JobRun.Outcome.OK, timedelta(minutes=30), took=timedelta(0))
        body = staff.get("/status?format=json").json()
    assert body["jobs"]["portal_cleanup"]["age_seconds"] == 1800
    assert body["jobs"]["portal_cleanup"]["state"] == "ok"


def test_the_share_used_is_of_the_used_bytes_not_the_free_ones():
    """At 50 % used the free and the used share coincide; a volume with a quarter free is
    75 % used, the figure an operator compares with the warning."""
    section = page.disk_section(
        "portal_temp", disk(state="warning", free=25 * MIB, warn=0, refuse=0)
    )
    assert section["used_share"] == 75
    assert section["reason"] == "the volume is 75 % used."
