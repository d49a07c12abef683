"""Pins for the jobs area, third round (issue #31): what a cleanup step reports when the
temp listing fails (local files and moto S3), and the counts and guards of stale and prune."""

import copy
import os
import uuid
from datetime import timedelta

import pytest

from portal import storage
from portal.models import IngestFile, JobRun, OutboxEvent, UploadSession
from portal.services import cleanup
from tests import objects
from tests.conftest import apply_storage
from tests.outbox_helpers import make_events
from tests.seed import ago, make_session, put_untracked_temp, seed_owner, storage_listing

pytestmark = pytest.mark.django_db


def test_a_failing_local_listing_names_the_storage_errors_reason(settings, data_dir):
    """The operator reads why the sweep could not list: the error's text (its
    ``strerror``), not only its class."""
    apply_storage(settings, "local", data_dir)
    os.rmdir(data_dir / "temp")
    os.symlink(data_dir / "nowhere", data_dir / "temp")
    result = cleanup.sweep_temp_storage()
    assert result.failed == 1
    assert result.failures == {
        "(listing)": "StorageRootMissing: storage root is missing (volume not mounted?)"
    }


def test_a_failing_s3_listing_names_the_services_error_code(settings, data_dir, moto_s3):
    """An S3 error has no ``strerror``: its reason is the service's error (here its code and
    message), so the report says what S3 refused."""
    apply_storage(settings, "s3", data_dir, s3=moto_s3, bucket=moto_s3.new_bucket())
    stores = copy.deepcopy(settings.STORAGES)
    stores["portal_temp"]["OPTIONS"]["bucket_name"] = f"portal-gone-{uuid.uuid4().hex[:12]}"
    settings.STORAGES = stores
    result = cleanup.sweep_temp_storage()
    assert result.failed >= 1
    reason = result.failures["(listing)"]
    assert reason.startswith("NoSuchBucket: {'Code': 'NoSuchBucket'"), reason
    assert "The specified bucket does not exist" in reason


def test_stale_fails_one_file_per_expired_session(portal_storage):
    """Three sessions expire in one batch: three files fail, and the counts say so."""
    owner = seed_owner("pins3-owner")
    expired = [make_session(owner, expires_at=ago(minutes=m)) for m in (1, 2, 3)]
    result = cleanup.cleanup_stale_sessions()
    assert result.counts == {"sessions_expired": 3, "files_failed": 3}
    assert result.batches == 1
    statuses = {s.file.status for s in UploadSession.objects.filter(pk__in=[s.pk for s in expired])}
    assert statuses == {IngestFile.Status.FAILED}


def test_a_dry_run_prune_counts_old_events_and_job_runs_and_keeps_them(portal_storage, settings):
    """The dry run's counts are what a real run would delete, row for row."""
    long_ago = ago(days=settings.PORTAL_OUTBOX_RETENTION_DAYS + 1)
    make_events(3, due=long_ago, status=OutboxEvent.Status.DELIVERED, delivered_at=long_ago)
    for _ in range(2):
        JobRun.objects.create(job="portal_dispatch", started_at=long_ago, outcome="ok")
    result = cleanup.prune_old_failed_sessions(cleanup.CleanupOptions(dry_run=True))
    assert (result.counts["outbox_events_pruned"], result.counts["job_runs_pruned"]) == (3, 2)
    assert (OutboxEvent.objects.count(), JobRun.objects.count()) == (3, 2)


def test_prune_never_touches_a_stored_files_session_or_object(portal_storage, settings):
    """A failed session whose file is nevertheless stored (its object is the user's data)
    is no prune candidate: the final object and the rows stay."""
    owner = seed_owner("pins3-owner")
    session = make_session(owner, status=UploadSession.Status.COMPLETE, received=[])
    old = ago(days=settings.PORTAL_FAILED_SESSION_RETENTION_DAYS + 1)
    UploadSession.objects.filter(pk=session.pk).update(
        status=UploadSession.Status.FAILED, finished_at=old
    )
    key = IngestFile.objects.get(pk=session.file_id).storage_key
    result = cleanup.prune_old_failed_sessions()
    assert (result.counts["sessions_pruned"], result.counts["final_objects_deleted"]) == (0, 0)
    assert UploadSession.objects.filter(pk=session.pk).exists()
    assert objects.final_exists(key)


def test_sweep_keeps_an_untracked_object_exactly_as_old_as_the_grace(portal_storage, settings):
    """The grace is a minimum age: an object exactly that old may still get its row (a
    part being committed), so only one older than that goes."""
    key = put_untracked_temp(ago(hours=1))
    [listed] = [item for item in storage.list_temp() if item.key == key]
    grace = timedelta(minutes=settings.PORTAL_ORPHAN_GRACE_MINUTES)
    at_grace = cleanup.CleanupOptions(now=listed.modified_at + grace)
    assert cleanup.sweep_temp_storage(at_grace).counts["objects_deleted"] == 0
    assert storage_listing()["temp"] == [key]
    past = cleanup.CleanupOptions(now=listed.modified_at + grace + timedelta(microseconds=1))
    assert cleanup.sweep_temp_storage(past).counts["objects_deleted"] == 1
    assert storage_listing()["temp"] == []
