"""Job figures behind ``/metrics`` (``portal.metrics.figures.job_figures``) at their
edges: a running row exactly as old as the last finished run, and a finished row whose
``finished_at`` is missing (hand-edited in the admin)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import F

from portal.metrics import figures
from portal.models import JobRun, OutboxEvent, UploadSession
from tests.outbox_helpers import make_events
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


def test_of_several_runs_with_one_outcome_the_newest_is_reported(db):
    """Every run of a job ends "ok" most days: the figures are the newest run's (its end,
    length and counts), not those of the first run ever recorded."""
    oldest = run(
        Outcome.OK, NOW - timedelta(days=3), NOW - timedelta(days=3) + timedelta(seconds=9)
    )
    newest = run(Outcome.OK, NOW - timedelta(minutes=5), NOW - timedelta(minutes=4))
    run(Outcome.OK, NOW - timedelta(days=1), NOW - timedelta(days=1) + timedelta(seconds=30))

    job = figures.job_figures("portal_dispatch")

    assert job.last_run_at == job.last_success_at == newest.finished_at
    assert job.last_run_seconds == 60.0 and job.last_run_at != oldest.finished_at


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


def test_a_run_that_ended_before_it_started_took_no_time(db):
    """Clock skew between cron hosts: a run whose end is before its start reads 0 s, never
    a negative duration."""
    started = NOW - timedelta(minutes=5)
    run(Outcome.OK, started, started - timedelta(seconds=3))

    assert figures.job_figures("portal_dispatch").last_run_seconds == 0.0


def test_a_sending_event_past_its_lease_is_due_on_its_own(db):
    """With no pending event due, a ``sending`` event whose lease ran out still makes the
    oldest-due age (its delivery died); a delivered or failed event never does."""
    make_events(1, due=NOW - timedelta(minutes=7), status=OutboxEvent.Status.SENDING)
    make_events(1, due=NOW - timedelta(hours=3), status=OutboxEvent.Status.DELIVERED)
    make_events(1, due=NOW - timedelta(hours=2), status=OutboxEvent.Status.FAILED)
    make_events(1, due=NOW + timedelta(minutes=1))

    assert figures.oldest_due_event_age(NOW) == 420.0


@pytest.mark.usefixtures("portal_storage")
def test_only_open_sessions_count_as_expired_and_only_finalizing_as_stalled(db):
    """A closed session past its expiry or its assembly lease is not an open session left
    behind, nor a stalled assembly: only ``init``/``in_progress`` and ``finalizing`` are."""
    owner = seed_owner()
    Status = UploadSession.Status
    for status in (Status.FINALIZING, Status.COMPLETE, Status.FAILED, Status.ABORTED):
        closed = make_session(owner, status=status, expires_at=NOW - timedelta(days=1))
        UploadSession.objects.filter(pk=closed.pk).update(
            assembly_lease_until=NOW - timedelta(hours=5)
        )
    UploadSession.objects.filter(status=Status.FINALIZING).update(
        assembly_lease_until=NOW - timedelta(seconds=90)
    )
    make_session(owner, status=Status.INIT, expires_at=NOW - timedelta(minutes=10))

    assert figures.oldest_expired_open_session_age(NOW) == 600.0
    assert figures.stalled_assembly_age(NOW) == 90.0


@pytest.mark.usefixtures("portal_storage")
def test_reserved_bytes_and_temp_objects_stop_at_the_cap(db, monkeypatch):
    """Both figures read at most ``COUNT_CAP`` rows, so a scrape costs the same with a
    hundred million rows: over the cap, one session's bytes and the cap's count only."""
    owner = seed_owner()
    first = make_session(owner, status=UploadSession.Status.INIT, total_parts=4)
    second = make_session(owner, status=UploadSession.Status.INIT, total_parts=2)
    make_session(owner, status=UploadSession.Status.FAILED, total_parts=3)  # 3 temp parts
    monkeypatch.setattr(figures, "COUNT_CAP", 2)

    assert figures.tracked_temp_objects() == 2
    monkeypatch.setattr(figures, "COUNT_CAP", 1)
    assert figures.tracked_temp_objects() == 1
    reserved = figures.open_reserved_bytes()
    assert reserved in (first.total_size_bytes, second.total_size_bytes)


@pytest.mark.usefixtures("portal_storage")
def test_a_finished_session_whose_temp_objects_are_gone_has_no_age(db):
    """Only sessions that still hold temp objects count: one finished earlier whose parts
    were all reclaimed (``temp_key`` blank) must not make the age look older."""
    owner = seed_owner()
    reclaimed = make_session(
        owner, status=UploadSession.Status.FAILED, finished_at=NOW - timedelta(days=3)
    )
    reclaimed.parts.update(temp_key="")
    make_session(owner, status=UploadSession.Status.ABORTED, finished_at=NOW - timedelta(hours=1))

    assert figures.oldest_finished_session_with_temp_age(NOW) == 3600.0


def test_a_cleanup_step_that_is_a_number_not_a_dict_reads_0(db):
    """Cleanup keeps counts per step: a step stored as a bare number (an older format, an
    edit) is unreadable, so its item reads 0, not the step's number; other steps stay."""
    started = NOW - timedelta(minutes=4)
    JobRun.objects.create(
        job="portal_cleanup",
        outcome=Outcome.OK,
        started_at=started,
        finished_at=started + timedelta(seconds=1),
        counts={"stale": 7, "orphans": {"objects_deleted": 2}, "prune": [5]},
    )

    items = figures.job_figures("portal_cleanup").items

    assert (items["expired"], items["deleted"], items["pruned"]) == (0, 2, 0)
