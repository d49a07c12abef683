"""Pins (issue #31, sixth round) for /status and its trend: data where a plausible wrong
implementation used to pass too."""

from datetime import timedelta

from django.utils import timezone

from portal.models import JobRun
from portal.services.status import page
from tests.test_status_page import run


def test_a_run_without_a_recorded_host_shows_a_dash_not_an_empty_cell(db):
    """Runs recorded before hosts were kept (or by a process that could not tell) have an
    empty ``host``: the table shows "—", as for a missing duration, not a blank cell that
    reads like a rendering fault; a known host shows as it is."""
    now = timezone.now()
    anonymous = run("portal_cleanup", JobRun.Outcome.OK, timedelta(minutes=3), host="")
    named = run("portal_cleanup", JobRun.Outcome.OK, timedelta(minutes=1), host="worker-2")
    assert page.run_row(anonymous, now)["host"] == "—"
    assert page.run_row(named, now)["host"] == "worker-2"
