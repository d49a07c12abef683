"""Operational cleanup: the four steps ``portal_cleanup`` runs, in this order.

1. ``stale``   open sessions past ``expires_at`` become ``failed`` ("expired"), their files too;
2. ``orphans`` temp objects of terminal sessions' parts are deleted, then ``temp_key`` cleared;
3. ``sweep``   temp objects older than the grace period that no part row points to go;
4. ``prune``   failed/aborted sessions past retention (with files and parts), delivered
               outbox events and old job runs are deleted.

How the work is cut (measured in ``notes/cleanup-performance.md``): every step works in
batches of ``batch_size`` rows, each batch its own short transaction, so memory stays flat
and no lock is held while storage is busy. Writes name rows by primary key only. A write
that also filters on ``status``/``expires_at`` lets SQLite (no statistics) and PostgreSQL
(stale statistics right after a bulk change) pick the status index and rescan every
remaining candidate for each batch, which is quadratic. So a transition locks its batch
by primary key (``SELECT … FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE`` serialises writers),
re-checks the condition on the locked rows, and updates the survivors by primary key. A
part upload locks the same session row, so either its part lands first (the TTL slid and
the session lives) or it finds the session failed (410) and keeps nothing.

Candidates come from the indexes the models declare, one ``LIMIT``-ed query per batch.
Where a processed row leaves the candidate set (stale, prune) the query has no ``ORDER
BY`` and reads the front of the index range; where rows may stay (parts whose deletion
failed) a keyset walks the partial index ``part_with_temp_key`` in session order, without
``DISTINCT``. Either way each query reads about one batch on both databases, whatever the
planner's statistics say. Storage goes first and the database second when deleting: a
crash leaves at worst a pointer to a gone object (deleting again is a no-op), never an
untracked object.
"""

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from portal import storage
from portal.models import IngestFile, JobRun, OutboxEvent, UploadPart, UploadSession
from portal.observability import log_event
from portal.services import jobs

logger = logging.getLogger(__name__)

STEPS = ("stale", "orphans", "sweep", "prune")
MAX_REPORTED_FAILURES = 20
Status = UploadSession.Status
PRUNABLE_STATUSES = (Status.FAILED, Status.ABORTED)


@dataclass
class StepResult:
    """What one step did (or, in a dry run, would do)."""

    step: str
    dry_run: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    stopped_early: bool = False
    batches: int = 0
    duration_ms: int = 0

    def add(self, name, amount=1):
        self.counts[name] = self.counts.get(name, 0) + amount

    def record_failures(self, failed: dict[str, str]):
        """Count every failure; keep a few keys with their reasons for the report."""
        self.failed += len(failed)
        for key, reason in failed.items():
            if len(self.failures) >= MAX_REPORTED_FAILURES:
                break
            self.failures[key] = reason

    def as_dict(self):
        return {
            "counts": dict(self.counts),
            "failed": self.failed,
            "failures": dict(self.failures),
            "stopped_early": self.stopped_early,
            "batches": self.batches,
            "duration_ms": self.duration_ms,
        }


class _Run:
    """The shared plumbing of one step: its result, its clock, stopping and progress."""

    def __init__(self, step, *, now, batch_size, dry_run, should_stop, on_batch, counts):
        self.now = now or timezone.now()
        self.batch_size = batch_size or settings.PORTAL_CLEANUP_BATCH_SIZE
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.dry_run = dry_run
        self.result = StepResult(step, dry_run=dry_run, counts=dict.fromkeys(counts, 0))
        self._should_stop = should_stop
        self._on_batch = on_batch
        self._started = time.monotonic()

    def stop_requested(self):
        """Checked between batches: ``--max-seconds`` ends a step cleanly, never mid-batch."""
        if self._should_stop is not None and self._should_stop():
            self.result.stopped_early = True
            return True
        return False

    def batch_done(self):
        self.result.batches += 1
        self.result.duration_ms = self._elapsed_ms()
        if self._on_batch is not None:
            self._on_batch(self.result)

    def finish(self):
        self.result.duration_ms = self._elapsed_ms()
        return self.result

    def _elapsed_ms(self):
        return int((time.monotonic() - self._started) * 1000)


def cleanup_stale_sessions(
    *,
    now: datetime | None = None,
    batch_size: int | None = None,
    dry_run: bool = False,
    should_stop: Callable[[], bool] | None = None,
    on_batch: Callable[[StepResult], None] | None = None,
) -> StepResult:
    """Fail open sessions whose sliding TTL ran out, and their files (reason "expired")."""
    run = _Run(
        "stale",
        now=now,
        batch_size=batch_size,
        dry_run=dry_run,
        should_stop=should_stop,
        on_batch=on_batch,
        counts=("sessions_expired", "files_failed"),
    )
    due = UploadSession.objects.filter(
        status__in=UploadSession.OPEN_STATUSES, expires_at__lt=run.now
    )
    if dry_run:
        for batch in _chunks(due.values_list("pk", "file_id").iterator(run.batch_size), run):
            _log_expired(batch, run, would=True)
        return run.finish()
    for ids in _leaving_batches(due, run):
        _log_expired(_expire(ids, run.now), run)
    return run.finish()


def _leaving_batches(queryset, run) -> Iterator[list]:
    """Primary keys of ``queryset`` in batches, for work that takes each row out of it.

    No ``ORDER BY`` and no keyset: every batch's rows leave the candidate set, so the
    next query starts at the front of the index range again and reads one batch. (An
    ``ORDER BY`` there lets PostgreSQL, without fresh statistics, sort every remaining
    candidate for each batch.) A batch that comes back unchanged ends the loop, so a row
    that cannot be processed never spins it.
    """
    previous = None
    while not run.stop_requested():
        ids = list(queryset.values_list("pk", flat=True)[: run.batch_size])
        if not ids or ids == previous:
            return
        previous = ids
        yield ids


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
        if expired:
            UploadSession.objects.filter(pk__in=[pk for pk, _ in expired]).update(
                status=Status.FAILED, failure_reason="expired", finished_at=now, updated_at=now
            )
            IngestFile.objects.filter(pk__in=[file_id for _, file_id in expired]).update(
                status=IngestFile.Status.FAILED, updated_at=now
            )
    return expired


def _log_expired(expired, run, *, would=False):
    if not expired:
        run.batch_done()
        return
    run.result.add("sessions_expired", len(expired))
    run.result.add("files_failed", len(expired))
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


def cleanup_orphan_temp_parts(
    *,
    now: datetime | None = None,
    batch_size: int | None = None,
    dry_run: bool = False,
    should_stop: Callable[[], bool] | None = None,
    on_batch: Callable[[StepResult], None] | None = None,
) -> StepResult:
    """Delete the temp objects of terminal sessions' parts, then clear their ``temp_key``.

    Only keys whose deletion succeeded are cleared; the rest stay tracked, are reported,
    and are retried by the next run. A dry run also counts the parts of sessions the
    ``stale`` step would expire.
    """
    run = _Run(
        "orphans",
        now=now,
        batch_size=batch_size,
        dry_run=dry_run,
        should_stop=should_stop,
        on_batch=on_batch,
        counts=("sessions", "objects_deleted", "delete_requests"),
    )
    pending: list[tuple[int, str]] = []
    counted = None  # a session larger than a batch comes in several pages: count it once
    with _Releaser(run) as release:
        for rows in _parts_holding_temp_keys(run):
            terminal = _terminal_sessions({session_id for session_id, _, _ in rows}, run)
            run.result.add("sessions", len(terminal - {counted}))
            counted = rows[-1][0]
            pending.extend((pk, key) for session_id, pk, key in rows if session_id in terminal)
            while len(pending) >= run.batch_size:
                release(pending[: run.batch_size])
                del pending[: run.batch_size]
            if run.stop_requested():
                break
        if pending:
            release(pending)
    return run.finish()


def _parts_holding_temp_keys(run) -> Iterator[list[tuple]]:
    """(session_id, pk, temp_key) of parts with a temp key, whole sessions per batch.

    Read in session order through the partial index ``part_with_temp_key`` (it holds
    exactly these rows) with a keyset on ``session_id``, ``LIMIT`` and no ``DISTINCT``, so
    every planner walks the index and stops after one batch, whatever its statistics say.
    A full batch may end inside a session: that session is read again by the next query
    (or, if it alone fills a batch, page by page by primary key).
    """
    holding = UploadPart.objects.exclude(temp_key="")
    last = None
    while True:
        query = holding if last is None else holding.filter(session_id__gt=last)
        rows = list(
            query.order_by("session_id").values_list("session_id", "pk", "temp_key")[
                : run.batch_size
            ]
        )
        if not rows:
            return
        last = rows[-1][0]
        if len(rows) == run.batch_size:
            whole = [row for row in rows if row[0] != last]
            if whole:
                last = whole[-1][0]
                yield whole
                continue
            yield from _parts_of_one_session(holding.filter(session_id=last), run)
            continue
        yield rows


def _parts_of_one_session(parts, run) -> Iterator[list[tuple]]:
    """A session with more keyed parts than a batch: its parts by primary-key keyset."""
    last_pk = 0
    while rows := list(
        parts.filter(pk__gt=last_pk)
        .order_by("pk")
        .values_list("session_id", "pk", "temp_key")[: run.batch_size]
    ):
        last_pk = rows[-1][1]
        yield rows


def _terminal_sessions(session_ids, run) -> set:
    """The ids among ``session_ids`` of terminal sessions (dry run: or ones it would expire)."""
    rows = UploadSession.objects.filter(pk__in=session_ids).values_list(
        "pk", "status", "expires_at"
    )
    terminal = set()
    for pk, status, expires_at in rows:
        would_expire = run.dry_run and status in UploadSession.OPEN_STATUSES
        if status in UploadSession.TERMINAL_STATUSES or (would_expire and expires_at < run.now):
            terminal.add(pk)
    return terminal


class _Releaser:
    """Releases batches of parts: storage first, then the keys of exactly what is gone.

    One batch's objects are deleted in a worker thread while the caller reads the next
    batch and the previous batch's keys are cleared, so storage and database time overlap
    instead of adding up. The order per batch is unchanged: a key is cleared only after
    its deletion returned; a crash leaves at worst a pointer to a gone object (deleting
    again is a no-op), never an untracked object.
    """

    def __init__(self, run):
        self.run = run
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="portal-release")
        self.in_flight = None

    def __enter__(self):
        return self

    def __call__(self, parts):
        if self.run.dry_run:
            self.run.result.add("objects_deleted", len(parts))
            self.run.batch_done()
            return
        by_key = {key: pk for pk, key in parts}
        deleting = self.pool.submit(storage.delete_temp, list(by_key))
        self._clear_in_flight()
        self.in_flight = (by_key, deleting)

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self._clear_in_flight()
        finally:
            self.pool.shutdown(wait=True)  # on an error the keys stay; the next run retries

    def _clear_in_flight(self):
        if self.in_flight is None:
            return
        by_key, deleting = self.in_flight
        self.in_flight = None
        outcome = _count_deletion(deleting.result(), self.run)
        gone = [by_key[key] for key in outcome.deleted]
        if gone:
            with transaction.atomic():
                UploadPart.objects.filter(pk__in=gone).update(temp_key="")
        self.run.batch_done()


def _delete_temp_objects(keys, run):
    """Delete temp objects and count what went, the requests made and what failed."""
    return _count_deletion(storage.delete_temp(keys), run)


def _count_deletion(outcome, run):
    run.result.add("objects_deleted", len(outcome.deleted))
    run.result.add("delete_requests", outcome.requests)
    run.result.record_failures(outcome.failed)
    return outcome


def sweep_temp_storage(
    *,
    now: datetime | None = None,
    batch_size: int | None = None,
    dry_run: bool = False,
    should_stop: Callable[[], bool] | None = None,
    on_batch: Callable[[StepResult], None] | None = None,
    grace: timedelta | None = None,
) -> StepResult:
    """Delete temp objects older than the grace period that no part row points to.

    They are left by a crash between a part's storage write and its commit. A part being
    written right now is younger than the grace period (the upload commits its row seconds
    after the write), so it is never listed here.
    """
    run = _Run(
        "sweep",
        now=now,
        batch_size=batch_size,
        dry_run=dry_run,
        should_stop=should_stop,
        on_batch=on_batch,
        counts=("objects_listed", "objects_deleted", "delete_requests"),
    )
    if grace is None:
        grace = timedelta(minutes=settings.PORTAL_ORPHAN_GRACE_MINUTES)
    for keys in _chunks(_listed_keys(run.now - grace, run), run):
        run.result.add("objects_listed", len(keys))
        tracked = set(
            UploadPart.objects.exclude(temp_key="")
            .filter(temp_key__in=keys)
            .values_list("temp_key", flat=True)
        )
        untracked = [key for key in keys if key not in tracked]
        if untracked and dry_run:
            run.result.add("objects_deleted", len(untracked))
        elif untracked:
            _delete_temp_objects(untracked, run)
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


def prune_old_failed_sessions(
    *,
    now: datetime | None = None,
    batch_size: int | None = None,
    dry_run: bool = False,
    should_stop: Callable[[], bool] | None = None,
    on_batch: Callable[[StepResult], None] | None = None,
) -> StepResult:
    """Delete failed/aborted sessions past retention, then old delivered events and job runs.

    A session is pruned only once none of its parts tracks a temp object any more (the
    ``orphans`` step runs first): a row that still points at an object is never dropped.
    Its file's final object, which a finalize that failed late may have left at the file's
    deterministic key, is deleted from storage before the rows. Complete sessions and
    stored files are never pruned.
    """
    run = _Run(
        "prune",
        now=now,
        batch_size=batch_size,
        dry_run=dry_run,
        should_stop=should_stop,
        on_batch=on_batch,
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
    if not run.result.stopped_early:
        cutoff = run.now - timedelta(days=settings.PORTAL_OUTBOX_RETENTION_DAYS)
        delivered = OutboxEvent.objects.filter(
            status=OutboxEvent.Status.DELIVERED, delivered_at__lt=cutoff
        )
        _delete_rows(delivered, "outbox_events_pruned", run)
    if not run.result.stopped_early:
        _close_abandoned_runs(run)
        _delete_rows(JobRun.objects.filter(started_at__lt=cutoff), "job_runs_pruned", run)
    return run.finish()


def _close_abandoned_runs(run):
    """Runs still ``running`` a day after they started died without recording their end.

    (``portal_cleanup`` closes its own dead runs at once, under its lock; this catches
    the others, such as a dispatcher killed mid-run.)
    """
    started_before = run.now - jobs.ABANDONED_AFTER
    if run.dry_run:
        running = JobRun.objects.filter(
            outcome=JobRun.Outcome.RUNNING, started_at__lt=started_before
        )
        run.result.add("job_runs_abandoned", running.count())
        return
    closed = jobs.close_abandoned_runs(started_before=started_before, now=run.now)
    run.result.add("job_runs_abandoned", closed)


def _prune_sessions(run, cutoff):
    holding_temp_key = UploadPart.objects.filter(session_id=OuterRef("pk")).exclude(temp_key="")
    due = (
        UploadSession.objects.filter(status__in=PRUNABLE_STATUSES, finished_at__lt=cutoff)
        .exclude(Exists(holding_temp_key))
        .exclude(file__status=IngestFile.Status.STORED)
    )
    if run.dry_run:
        for batch in _chunks(due.values_list("pk").iterator(run.batch_size), run):
            run.result.add("sessions_pruned", len(batch))
            run.batch_done()
        return
    for ids in _leaving_batches(due, run):
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
        run.result.record_failures(outcome.failed)
        if outcome.failed:
            # The store is failing: keep every row of this batch for the next run.
            run.batch_done()
            return False
        run.result.add("final_objects_deleted", len(outcome.deleted))
        with transaction.atomic():
            # Deleting the files cascades to their sessions and parts.
            IngestFile.objects.filter(pk__in=[file_id for _, file_id, _, _ in batch]).exclude(
                status=IngestFile.Status.STORED
            ).delete()
        run.result.add("sessions_pruned", len(batch))
    run.batch_done()
    return True


def _delete_rows(queryset, count_name, run):
    """Delete ``queryset``'s rows in primary-key batches (dry run: count them)."""
    if run.dry_run:
        run.result.add(count_name, queryset.count())
        return
    while not run.stop_requested():
        ids = list(queryset.values_list("pk", flat=True)[: run.batch_size])
        if not ids:
            return
        with transaction.atomic():
            deleted, _ = queryset.model.objects.filter(pk__in=ids).delete()
        run.result.add(count_name, deleted)
        run.batch_done()


def _chunks(items: Iterable, run) -> Iterator[list]:
    """Batches of ``run.batch_size`` from a stream, checking for a stop between batches."""
    iterator = iter(items)
    while not run.stop_requested():
        batch = list(islice(iterator, run.batch_size))
        if not batch:
            return
        yield batch


STEP_FUNCTIONS = {
    "stale": cleanup_stale_sessions,
    "orphans": cleanup_orphan_temp_parts,
    "sweep": sweep_temp_storage,
    "prune": prune_old_failed_sessions,
}


def run_cleanup(
    *,
    steps: Iterable[str] = STEPS,
    now: datetime | None = None,
    batch_size: int | None = None,
    dry_run: bool = False,
    should_stop: Callable[[], bool] | None = None,
    on_batch: Callable[[StepResult], None] | None = None,
) -> list[StepResult]:
    """Run ``steps`` in the contract's order; log ``cleanup.step`` after each.

    A step that stopped early (``should_stop``) ends the run: later steps are not started.
    """
    results = []
    wanted = set(steps)
    for name in STEPS:
        if name not in wanted:
            continue
        result = STEP_FUNCTIONS[name](
            now=now,
            batch_size=batch_size,
            dry_run=dry_run,
            should_stop=should_stop,
            on_batch=on_batch,
        )
        results.append(result)
        log_event(
            logger,
            "cleanup.step",
            f"cleanup step {name}" + (" (dry run)" if dry_run else ""),
            level=logging.WARNING if result.failed else logging.INFO,
            step=name,
            counts=result.counts,
            failed=result.failed,
            failures=result.failures,
            stopped_early=result.stopped_early,
            dry_run=dry_run,
            duration_ms=result.duration_ms,
        )
        if result.stopped_early:
            break
    return results
