"""Step ``sweep``: untracked temp objects older than the grace period, and on S3 the
multipart uploads of dead assemblies (design.md, "Invariants", 3)."""

from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings

from portal import storage
from portal.models import TusUpload, UploadPart, UploadSession
from portal.services.cleanup.base import (
    CleanupOptions,
    StepRun,
    chunks,
    count_deletion,
)


def sweep_temp_storage(options: CleanupOptions | None = None) -> StepRun:
    """Delete untracked temp objects older than ``options.grace`` (default: the setting)."""
    run = StepRun(
        "sweep",
        options,
        counts=("objects_listed", "objects_deleted", "delete_requests", "uploads_aborted"),
    )
    grace = run.options.grace
    if grace is None:
        grace = timedelta(minutes=settings.PORTAL_ORPHAN_GRACE_MINUTES)
    for keys in chunks(_listed_keys(run.now - grace, run), run):
        run.add("objects_listed", len(keys))
        untracked = untracked_keys(keys)
        if untracked and run.dry_run:
            run.add("objects_deleted", len(untracked))
        elif untracked:
            count_deletion(storage.delete_temp(untracked), run)
        run.batch_done()
    if not run.stopped_early:
        _abort_dead_assemblies(run.now - grace, run)
    return run.finish()


def _abort_dead_assemblies(older_than, run):
    """Abort the multipart uploads no live assembly owns (S3; nothing on local storage)."""
    live = set(
        UploadSession.objects.filter(status=UploadSession.Status.FINALIZING)
        .exclude(assembly_upload_id="")
        .values_list("assembly_upload_id", flat=True)
    )
    try:
        for key, upload_id in storage.backend().stale_multipart_uploads(older_than=older_than):
            if upload_id in live:
                continue
            if not run.dry_run:
                storage.backend().abort_multipart_upload(upload_id, key)
            run.add("uploads_aborted")
    except storage.StorageUnavailable as exc:
        run.record_failures({"(multipart listing)": str(exc)[:200]})


def untracked_keys(keys):
    """The temp keys among ``keys`` nothing keeps: no part row points to them, no active
    tus upload holds them as its tail, and an assembly file's session is no longer active."""
    parts = UploadPart.objects.exclude(temp_key="").filter(temp_key__in=keys)
    tracked = set(parts.values_list("temp_key", flat=True))
    tails = TusUpload.objects.filter(
        tail_key__in=keys, session__status__in=UploadSession.ACTIVE_STATUSES
    )
    tracked.update(tails.values_list("tail_key", flat=True))
    owners = {key: storage.assembly_session(key) for key in keys}
    active = set(
        UploadSession.objects.filter(
            pk__in={owner for owner in owners.values() if owner is not None},
            status__in=UploadSession.ACTIVE_STATUSES,
        ).values_list("pk", flat=True)
    )
    tracked.update(key for key in keys if owners[key] in active)
    return [key for key in keys if key not in tracked]


def _listed_keys(older_than, run) -> Iterator[str]:
    """Stream the listing (assembly files at any age); a failing listing is reported."""
    try:
        for item in storage.list_temp():
            if item.modified_at < older_than or storage.assembly_session(item.key):
                yield item.key
    except Exception as exc:  # any backend's error: the step ends, the next run lists again
        reason = getattr(exc, "strerror", None) or getattr(exc, "response", {}).get("Error", {})
        run.record_failures({"(listing)": f"{type(exc).__name__}: {reason or ''}"[:200]})
