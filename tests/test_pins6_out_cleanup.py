"""Weak pins in cleanup (issue #31, sixth round): the per-step records and boundaries where
a wrong step used to pass too."""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from portal.models import UploadSession
from portal.services import cleanup
from tests.conftest import apply_storage
from tests.log_helpers import events_named
from tests.seed import make_session
from tests.storage_helpers import multipart_ids, start_multipart


def test_each_step_line_of_a_dry_run_says_so_and_a_real_runs_do_not(db, portal_storage, caplog):
    """An operator reading "cleanup step sweep" in the text log must be able to tell a
    rehearsal from a run that deleted: every step line of a dry run carries "(dry run)"
    and ``dry_run=True``, and no line of a real run does."""
    caplog.set_level(logging.INFO, logger="portal")
    seen = {}
    for dry_run in (True, False):
        caplog.clear()
        cleanup.run_cleanup(cleanup.CleanupOptions(dry_run=dry_run))
        seen[dry_run] = [(r.getMessage(), r.dry_run) for r in events_named(caplog, "cleanup.step")]
    steps = ("stale", "orphans", "sweep", "prune")
    assert seen[True] == [(f"cleanup step {step} (dry run)", True) for step in steps]
    assert seen[False] == [(f"cleanup step {step}", False) for step in steps]


@pytest.fixture
def on_s3(settings, data_dir, moto_s3):
    return apply_storage(settings, "s3", data_dir, s3=moto_s3, bucket=moto_s3.new_bucket())


def test_sweep_aborts_the_multipart_upload_of_an_assembly_that_ended(on_s3, user, settings):
    """A session keeps its ``assembly_upload_id`` after its assembly failed (the process died
    and portal_finalize gave up): only a *finalizing* session's upload is live, so the dead
    one is aborted (S3 bills the parts of a multipart upload until then), the live one kept."""
    ended = make_session(user, status=UploadSession.Status.FAILED, total_parts=1)
    running = make_session(user, total_parts=1)
    dead, live = start_multipart("dead"), start_multipart("live")
    UploadSession.objects.filter(pk=ended.pk).update(assembly_upload_id=dead)
    UploadSession.objects.filter(pk=running.pk).update(
        status=UploadSession.Status.FINALIZING, assembly_upload_id=live
    )
    later = timezone.now() + timedelta(minutes=settings.PORTAL_ORPHAN_GRACE_MINUTES + 5)

    result = cleanup.sweep_temp_storage(cleanup.CleanupOptions(now=later))

    assert result.counts["uploads_aborted"] == 1
    assert multipart_ids() == {live}


def test_a_skipped_rehearsal_says_it_was_a_dry_run(lock_holder, caplog):
    """Another host holds the cleanup lock: the ``cleanup.skipped`` line of a dry run
    carries ``dry_run=True`` and a real run's ``False``, so an alert on skipped real runs
    (cron overlapping itself) is not set off by an operator's rehearsal."""
    holder = lock_holder("portal_cleanup")
    caplog.set_level(logging.INFO, logger="portal")
    seen = {}
    for dry_run in (True, False):
        caplog.clear()
        report = cleanup.run_cleanup_job(cleanup.CleanupOptions(dry_run=dry_run))
        assert report.summary["outcome"] == "skipped"
        (skipped,) = events_named(caplog, "cleanup.skipped")
        seen[dry_run] = skipped.dry_run
    assert seen == {True: True, False: False}
    holder.release("portal_cleanup")
