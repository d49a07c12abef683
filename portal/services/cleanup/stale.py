"""Step ``stale``: open sessions past ``expires_at`` become ``failed`` ("expired"), files
too; re-checked on the locked rows, so a part that arrived meanwhile wins."""

import logging

from django.db import transaction

from portal.models import UploadSession
from portal.observability import log_event
from portal.services.cleanup.base import (
    CleanupOptions,
    StepRun,
    chunks,
    leaving_batches,
)
from portal.services.sessions import close_sessions

logger = logging.getLogger("portal.services.cleanup")


def cleanup_stale_sessions(options: CleanupOptions | None = None) -> StepRun:
    """Fail open sessions whose sliding TTL ran out, and their files (reason "expired")."""
    run = StepRun("stale", options, counts=("sessions_expired", "files_failed"))
    due = UploadSession.objects.filter(
        status__in=UploadSession.OPEN_STATUSES, expires_at__lt=run.now
    )
    if run.dry_run:
        for batch in chunks(due.values_list("pk", "file_id").iterator(run.batch_size), run):
            _log_expired(batch, run, would=True)
        return run.finish()
    for ids in leaving_batches(due, run):
        _log_expired(_expire(ids, run.now), run)
    return run.finish()


def _expire(ids, now):
    """Lock the batch, keep the sessions still open and past due, fail them and their files."""
    with transaction.atomic():
        rows = (
            UploadSession.objects.select_for_update()
            .filter(pk__in=ids)
            .values_list("pk", "file_id", "status", "expires_at")
        )
        expired = [
            (pk, file_id)
            for pk, file_id, status, expires_at in rows
            if status in UploadSession.OPEN_STATUSES and expires_at < now
        ]
        close_sessions(expired, UploadSession.Status.FAILED, "expired", now)
    return expired


def _log_expired(expired, run, *, would=False):
    if not expired:
        run.batch_done()
        return
    run.add("sessions_expired", len(expired))
    run.add("files_failed", len(expired))
    verb = "would expire" if would else "expired"
    if logger.isEnabledFor(logging.DEBUG):
        for session_id, file_id in expired:
            log_event(
                logger,
                "session.expired",
                f"upload session {verb}",
                level=logging.DEBUG,
                session_id=str(session_id),
                file_id=str(file_id),
                dry_run=would,
            )
    log_event(
        logger,
        "session.expired",
        f"{verb} {len(expired)} upload sessions",
        count=len(expired),
        dry_run=would,
    )
    run.batch_done()
