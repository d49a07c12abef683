"""Step ``prune``: old failed/aborted sessions with their files and parts (once no part
tracks a temp object; a late-failed finalize's final object first), old delivered outbox
events, and job runs."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef

from portal import storage
from portal.models import IngestFile, JobRun, OutboxEvent, UploadPart, UploadSession
from portal.services import jobs
from portal.services.cleanup.base import (
    CleanupOptions,
    StepRun,
    chunks,
    leaving_batches,
)

PRUNABLE_STATUSES = (UploadSession.Status.FAILED, UploadSession.Status.ABORTED)


def prune_old_failed_sessions(options: CleanupOptions | None = None) -> StepRun:
    """Delete failed/aborted sessions past retention, then old delivered events and job runs."""
    run = StepRun(
        "prune",
        options,
        counts=(
            "sessions_pruned",
            "final_objects_deleted",
            "outbox_events_pruned",
            "job_runs_abandoned",
            "job_runs_pruned",
        ),
    )
    session_cutoff = run.now - timedelta(days=settings.PORTAL_FAILED_SESSION_RETENTION_DAYS)
    _prune_sessions(run, session_cutoff)
    if not run.stopped_early:
        cutoff = run.now - timedelta(days=settings.PORTAL_OUTBOX_RETENTION_DAYS)
        delivered = OutboxEvent.objects.filter(
            status=OutboxEvent.Status.DELIVERED, delivered_at__lt=cutoff
        )
        _delete_rows(delivered, "outbox_events_pruned", run)
    if not run.stopped_early:
        _close_abandoned_runs(run)
        _delete_rows(JobRun.objects.filter(started_at__lt=cutoff), "job_runs_pruned", run)
    return run.finish()


def _close_abandoned_runs(run):
    """Runs still ``running`` a day after they started died without recording their end."""
    dead = JobRun.objects.filter(outcome=JobRun.Outcome.RUNNING)
    dead = dead.filter(started_at__lt=run.now - jobs.ABANDONED_AFTER)
    run.add("job_runs_abandoned", dead.count() if run.dry_run else jobs.abandon(dead, run.now))


def _prune_sessions(run, cutoff):
    holding_temp_key = UploadPart.objects.filter(session_id=OuterRef("pk")).exclude(temp_key="")
    due = (
        UploadSession.objects.filter(status__in=PRUNABLE_STATUSES, finished_at__lt=cutoff)
        .exclude(Exists(holding_temp_key))
        .exclude(file__status=IngestFile.Status.STORED)
    )
    if run.dry_run:
        for batch in chunks(due.values_list("pk").iterator(run.batch_size), run):
            run.add("sessions_pruned", len(batch))
            run.batch_done()
        return
    for ids in leaving_batches(due, run):
        if not _prune_batch(ids, run):
            return


def _prune_batch(ids, run):
    """Final objects first, then the rows; False if storage failed (rows kept, step ends)."""
    batch = list(
        UploadSession.objects.filter(pk__in=ids).values_list(
            "pk", "file_id", "file__storage_key", "file__created_at"
        )
    )
    if batch:
        final_keys = [
            storage_key or storage.new_final_key(file_id, now=created_at)
            for _, file_id, storage_key, created_at in batch
        ]
        outcome = storage.delete_final(final_keys)
        run.record_failures(outcome.failed)
        if outcome.failed:
            # The store is failing: keep every row of this batch for the next run.
            run.batch_done()
            return False
        run.add("final_objects_deleted", len(outcome.deleted))
        with transaction.atomic():
            # Deleting the files cascades to their sessions and parts.
            IngestFile.objects.filter(pk__in=[file_id for _, file_id, _, _ in batch]).exclude(
                status=IngestFile.Status.STORED
            ).delete()
        run.add("sessions_pruned", len(batch))
    run.batch_done()
    return True


def _delete_rows(queryset, count_name, run):
    """Delete ``queryset``'s rows in primary-key batches (dry run: count them)."""
    if run.dry_run:
        run.add(count_name, queryset.count())
        return
    for ids in leaving_batches(queryset, run):
        with transaction.atomic():
            deleted, _ = queryset.model.objects.filter(pk__in=ids).delete()
        run.add(count_name, deleted)
        run.batch_done()
