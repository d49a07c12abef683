"""Pins for the jobs area, second round (issue #31): what the commands print and record
around the work itself (a dry run's summary, a database failure's line)."""

import pytest
from django.core.management.base import CommandError
from django.db import OperationalError

from portal.models import JobRun
from portal.services import cleanup
from tests.test_commands import run_from_command_line

pytestmark = pytest.mark.django_db


def test_a_dry_run_closes_no_abandoned_runs_and_says_none(portal_storage):
    JobRun.objects.create(job=cleanup.JOB, started_at="2020-01-01T00:00:00Z")
    report = cleanup.run_cleanup_job(cleanup.CleanupOptions(dry_run=True))
    assert report.summary["abandoned_runs_closed"] == 0
    assert JobRun.objects.get().outcome == JobRun.Outcome.RUNNING
    real = cleanup.run_cleanup_job()
    assert real.summary["abandoned_runs_closed"] == 1


def test_a_database_failure_shows_the_first_300_characters_of_its_first_line(settings):
    settings.PORTAL_LOG_FORMAT = "console"
    with pytest.raises(CommandError) as error:
        run_from_command_line(OperationalError("x" * 400 + "\nmore"))
    assert str(error.value) == (
        f"the database failed: OperationalError: {'x' * 300} (is it reachable, and migrated?)"
    )
