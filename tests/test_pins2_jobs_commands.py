"""Pins for the jobs area, second round (issue #31): what the commands print and record
around the work itself (a dry run's summary, a database failure's line)."""

from datetime import timedelta

import pytest
from django.core.management.base import CommandError
from django.db import OperationalError
from django.utils import timezone

from portal.models import JobRun, UploadSession
from portal.services import cleanup
from tests.commands import run_from_command_line, usage_error
from tests.seed import Status, make_session, seed_owner, temp_keys_of

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


@pytest.mark.parametrize(
    "command, args, message",
    [
        ("portal_upload", ["f", "--url", "http://p/", "--retries", "x"], "'x' is not a whole"),
        ("portal_cleanup", ["--batch-size", "lots"], "'lots' is not a whole number"),
        ("portal_cleanup", ["--max-seconds", "soon"], "'soon' is not a number"),
    ],
)
def test_an_option_that_is_no_number_is_refused_as_such(command, args, message):
    code, err = usage_error(command, *args)
    assert code == 2 and message in err


def test_a_dry_run_does_not_count_a_finalizing_sessions_parts(portal_storage):
    owner = seed_owner("pins2-owner")
    past = timezone.now() - timedelta(hours=1)
    session = make_session(owner, total_parts=2, expires_at=past)
    UploadSession.objects.filter(pk=session.pk).update(status=Status.FINALIZING)
    expired = make_session(owner, total_parts=3, expires_at=past)
    dry = cleanup.cleanup_orphan_temp_parts(cleanup.CleanupOptions(dry_run=True))
    # Only the open session past its expiry would go (stale fails it first).
    assert dry.counts["objects_deleted"] == 3 and dry.counts["sessions"] == 1
    assert len(temp_keys_of(session)) == 2 and len(temp_keys_of(expired)) == 3
