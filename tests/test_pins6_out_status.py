"""Pins (issue #31, sixth round) for /status and its trend: data where a plausible wrong
implementation used to pass too."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from portal.models import JobRun, OutboxEvent
from portal.services.status import page, trend
from tests.status_helpers import (
    REQUEUE,
    completed_upload,
    csrf_of,
    failed_event,
    fresh_probe_cache,  # noqa: F401  (autouse here)
    make_staff,
    monitoring_bearer,
    run,
)


def test_a_run_without_a_recorded_host_shows_a_dash_not_an_empty_cell(db):
    """Runs recorded before hosts were kept (or by a process that could not tell) have an
    empty ``host``: the table shows "—", as for a missing duration, not a blank cell that
    reads like a rendering fault; a known host shows as it is."""
    now = timezone.now()
    anonymous = run("portal_cleanup", JobRun.Outcome.OK, timedelta(minutes=3), host="")
    named = run("portal_cleanup", JobRun.Outcome.OK, timedelta(minutes=1), host="worker-2")
    assert page.run_row(anonymous, now)["host"] == "—"
    assert page.run_row(named, now)["host"] == "worker-2"


def test_an_upload_stored_at_the_first_instant_of_the_window_is_counted(db, django_user_model):
    """The 24 h chart starts on the hour: an upload completed at exactly 15:00 yesterday
    belongs to the first bar (and one a microsecond earlier to none), else a day's total
    under-counts whatever finished on that hour mark."""
    owner = django_user_model.objects.create_user("owner")
    now = datetime(2026, 12, 7, 14, 30, tzinfo=UTC)
    first_hour = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)
    completed_upload(owner, first_hour, 3000)
    completed_upload(owner, first_hour - timedelta(microseconds=1), 5000)

    hours = trend.hourly_uploads(now)

    assert hours[0] == (first_hour, 1, 3000)
    assert sum(uploads for _, uploads, _ in hours) == 1


@pytest.fixture
def oncall(db, django_user_model):
    """Staff with the change permission on outbox events: may requeue."""
    return make_staff(django_user_model, "oncall", can_change=True)


def refusal(answer):
    """(status, error code, message) of a JSON refusal."""
    error = answer.json()["error"]
    return answer.status_code, error["code"], error["message"]


def test_requeue_refusals_say_who_may_requeue_and_why_not(db, oncall, django_user_model):
    """A refused requeue names its reason in the JSON an operator's script reads: anonymous
    means log in, a monitoring token never changes anything, an unknown id is no event, and
    a live event names its status; a status code alone would hide a refusal for the wrong
    reason."""
    event = failed_event()
    delivered = failed_event()
    OutboxEvent.objects.filter(pk=delivered.pk).update(status=OutboxEvent.Status.DELIVERED)
    body = {"event_id": str(event.pk)}
    bearer = monitoring_bearer(django_user_model)
    token = csrf_of(oncall)

    assert refusal(Client().post(REQUEUE, body)) == (
        401,
        "login_required",
        "log in as staff to requeue events",
    )
    assert refusal(Client().post(REQUEUE, body, **bearer)) == (
        403,
        "forbidden",
        "a monitoring token reads /status; it cannot change anything",
    )
    unknown = {"event_id": str(uuid.UUID(int=7)), "csrfmiddlewaretoken": token}
    assert refusal(oncall.post(REQUEUE, unknown)) == (
        404,
        "event_not_found",
        "no outbox event has this id",
    )
    live = {"event_id": str(delivered.pk), "csrfmiddlewaretoken": token}
    assert refusal(oncall.post(REQUEUE, live)) == (
        409,
        "event_not_failed",
        "the event is delivered, not failed: nothing to requeue",
    )
    assert OutboxEvent.objects.get(pk=event.pk).status == OutboxEvent.Status.FAILED


def test_a_failed_runs_error_shows_once_in_its_column_not_among_the_counts(db):
    """A failed run records its exception under ``counts["error"]``: the row shows it in
    the error column, and the counts read as the items handled, without the error text
    repeated as if it were one more count."""
    failed = run(
        "portal_cleanup",
        JobRun.Outcome.FAILED,
        timedelta(minutes=2),
        counts={"stale": {"sessions_expired": 2}, "error": "OperationalError: gone"},
    )
    row = page.run_row(failed, timezone.now())
    assert (row["counts"], row["error"]) == ("stale.sessions_expired 2", "OperationalError: gone")


def test_the_failed_list_follows_the_reports_count(db):
    """The report is cached for a few seconds: when it counted no failed event, the
    section lists none either (an event that failed since would show in a table under
    "nothing stuck"), and once it counts one, the list shows it."""
    event = failed_event()
    quiet = {"state": "ok", "failed": 0, "pending": 0, "oldest_pending_age_seconds": None}
    section = page.outbox_section(quiet, timezone.now())
    assert (section["reason"], section["failed_events"]) == ("nothing stuck.", [])

    counted = page.outbox_section({**quiet, "state": "warning", "failed": 1}, timezone.now())
    assert [listed["id"] for listed in counted["failed_events"]] == [str(event.pk)]


def test_the_busiest_hour_is_the_one_with_most_uploads_not_most_bytes(db, django_user_model):
    """Two small uploads at 10:00 and one large at 13:00: the uploads summary names 10:00
    (the chart it sums up counts uploads), while the bytes chart peaks at 13:00; data where
    one hour leads both would let either reading pass."""
    owner = django_user_model.objects.create_user("owner")
    now = datetime(2026, 12, 7, 14, 30, tzinfo=UTC)
    completed_upload(owner, datetime(2026, 12, 7, 10, 5, tzinfo=UTC), 1024)
    completed_upload(owner, datetime(2026, 12, 7, 10, 35, tzinfo=UTC), 1024)
    completed_upload(owner, datetime(2026, 12, 7, 13, 15, tzinfo=UTC), 5 * 1024**2)

    context = trend.trend_context(now)

    assert context["uploads_summary"] == "3 upload(s) in 24 h; busiest hour 10:00 UTC with 2"
    assert context["bytes_summary"] == "5.0 MiB stored in 24 h"
    assert 'font-weight="bold">5.0 MiB</text>' in str(context["bytes_svg"])
