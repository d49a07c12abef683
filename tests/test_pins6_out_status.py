"""Pins (issue #31, sixth round) for /status and its trend: data where a plausible wrong
implementation used to pass too."""

from datetime import UTC, datetime, timedelta

from django.utils import timezone

from portal.models import JobRun
from portal.services.status import page, trend
from tests.test_status_page import run
from tests.test_status_trend import completed_upload, fresh_probe_cache  # noqa: F401


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
