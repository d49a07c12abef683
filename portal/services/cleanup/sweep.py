"""Step ``sweep``: temp objects older than the grace period that no part row points to.

They are left by a crash between a part's storage write and its commit. A part being
written right now is younger than the grace period (the upload commits its row seconds
after the write), so it is never listed here.
"""

from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings

from portal import storage
from portal.models import UploadPart
from portal.services.cleanup.base import (
    CleanupOptions,
    StepResult,
    StepRun,
    chunks,
    count_deletion,
)


def sweep_temp_storage(options: CleanupOptions | None = None) -> StepResult:
    """Delete untracked temp objects older than ``options.grace`` (default: the setting)."""
    run = StepRun("sweep", options, counts=("objects_listed", "objects_deleted", "delete_requests"))
    grace = run.options.grace
    if grace is None:
        grace = timedelta(minutes=settings.PORTAL_ORPHAN_GRACE_MINUTES)
    for keys in chunks(_listed_keys(run.now - grace, run), run):
        run.result.add("objects_listed", len(keys))
        tracked = set(
            UploadPart.objects.exclude(temp_key="")
            .filter(temp_key__in=keys)
            .values_list("temp_key", flat=True)
        )
        untracked = [key for key in keys if key not in tracked]
        if untracked and run.dry_run:
            run.result.add("objects_deleted", len(untracked))
        elif untracked:
            count_deletion(storage.delete_temp(untracked), run)
        run.batch_done()
    return run.finish()


def _listed_keys(older_than, run) -> Iterator[str]:
    """Stream the listing; a storage that fails mid-listing is a reported failure of the step."""
    try:
        for item in storage.list_temp(older_than=older_than):
            yield item.key
    except Exception as exc:  # any backend's error: the step ends, the next run lists again
        reason = getattr(exc, "strerror", None) or getattr(exc, "response", {}).get("Error", {})
        run.result.record_failures({"(listing)": f"{type(exc).__name__}: {reason or ''}"[:200]})
