"""Job figures behind ``/metrics`` (``portal.metrics.figures.job_figures``) at their
edges: a running row exactly as old as the last finished run, and a finished row whose
``finished_at`` is missing (hand-edited in the admin)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import F

from portal.metrics import figures
from portal.models import JobRun, UploadSession
from tests.seed import make_session, seed_owner

NOW = datetime(2030, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
Outcome = JobRun.Outcome


def run(outcome, started, finished=None, counts=None):
    return JobRun.objects.create(
        job="portal_dispatch",
        outcome=outcome,
        started_at=started,
        finished_at=finished,
        counts=counts or {},
    )


def test_a_run_started_with_the_last_finished_run_is_not_running(db):
    """``running`` means started after the most recent finished run: a running row of the
    same instant is that run's leftover, not a new run (strictly later only)."""
    started = NOW - timedelta(minutes=3)
    run(Outcome.OK, started, started + timedelta(seconds=4))
    stale = run(Outcome.RUNNING, started)

    assert figures.job_figures("portal_dispatch").running is False

    stale.started_at = started + timedelta(microseconds=1)
    stale.save()
    assert figures.job_figures("portal_dispatch").running is True


def test_a_finished_run_without_an_end_reads_as_ended_when_it_started(db):
    """A finished row missing ``finished_at`` (edited by hand) still gives figures: it
    ended when it started, took 0 s, and counts as the last success; no TypeError."""
    started = NOW - timedelta(minutes=9)
    run(Outcome.OK, NOW - timedelta(hours=2), NOW - timedelta(hours=2) + timedelta(seconds=5))
    run(Outcome.PARTIAL, started, None, {"delivered": 3})

    found = figures.job_figures("portal_dispatch")

    assert found.last_run_at == started
    assert found.last_run_seconds == 0.0
    assert found.last_outcome == Outcome.PARTIAL
    assert found.last_success_at == started
    assert found.items["delivered"] == 3


@pytest.mark.usefixtures("portal_storage")
def test_reserved_bytes_never_read_below_zero(db):
    """A session that counted more bytes than it declared (a hand edit, a bug elsewhere)
    reads as nothing reserved, never as negative reserved space."""
    owner = seed_owner()
    session = make_session(owner, status=UploadSession.Status.IN_PROGRESS, received=[1])
    UploadSession.objects.filter(pk=session.pk).update(bytes_received=F("total_size_bytes") + 1000)

    assert figures.open_reserved_bytes() == 0


def test_a_fractional_item_count_reads_as_a_whole_number(db):
    """Item counts are whole items: a float in ``counts`` (a future format, an edit) is
    cut to an int, so the gauge never shows 2.7 items."""
    started = NOW - timedelta(minutes=1)
    run(Outcome.OK, started, started + timedelta(seconds=2), {"released": 2.7, "retried": 4.0})

    items = figures.job_figures("portal_dispatch").items

    assert (items["released"], type(items["released"])) == (2, int)
    assert (items["retried"], type(items["retried"])) == (4, int)


@pytest.mark.usefixtures("portal_storage")
def test_a_session_finished_after_now_is_no_negative_age(db):
    """A finished session still holding temp objects whose ``finished_at`` is ahead of the
    scraping host's clock (skew between hosts) reads 0 s old, never a negative age."""
    owner = seed_owner()
    finished = NOW + timedelta(seconds=30)
    make_session(owner, status=UploadSession.Status.FAILED, finished_at=finished)

    assert figures.oldest_finished_session_with_temp_age(NOW) == 0.0
    later = finished + timedelta(seconds=45)
    assert figures.oldest_finished_session_with_temp_age(later) == 45.0
