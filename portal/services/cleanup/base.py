"""What every cleanup step shares: its options, its run (which is its result), batching."""

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import islice

from django.conf import settings
from django.utils import timezone

from portal import storage

STEPS = ("stale", "orphans", "sweep", "prune")
MAX_REPORTED_FAILURES = 20


@dataclass(frozen=True)
class CleanupOptions:
    """How to run one step or a whole run; unset values come from the settings.
    ``should_stop`` and ``max_seconds`` end a step between batches, never mid-batch."""

    steps: tuple[str, ...] = STEPS
    now: datetime | None = None
    batch_size: int | None = None
    dry_run: bool = False
    max_seconds: float | None = None
    should_stop: Callable[[], bool] | None = None
    on_batch: Callable[["StepRun"], None] | None = None
    grace: timedelta | None = None

    def started(self):
        """The options of a run that starts now: the clock read once, the deadline fixed."""
        stop = self.should_stop
        if self.max_seconds is not None:
            stop = _stop_at(time.monotonic() + self.max_seconds, stop)
        return replace(self, now=self.now or timezone.now(), should_stop=stop, max_seconds=None)


def _stop_at(deadline, other=None):
    def stop():
        return time.monotonic() >= deadline or bool(other is not None and other())

    return stop


class StepRun:
    """One step in progress, and what it did (or, in a dry run, would do) once finished."""

    def __init__(self, step, options, *, counts):
        self.options = (options or CleanupOptions()).started()
        self.step = step
        self.now = self.options.now
        self.batch_size = self.options.batch_size or settings.PORTAL_CLEANUP_BATCH_SIZE
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.dry_run = self.options.dry_run
        self.counts = dict.fromkeys(counts, 0)
        self.failed = 0
        self.failures = {}
        self.stopped_early = False
        self.batches = 0
        self.duration_ms = 0
        self._started = time.monotonic()

    def add(self, name, amount=1):
        self.counts[name] = self.counts.get(name, 0) + amount

    def record_failures(self, failed: dict[str, str]):
        """Count every failure; keep a few keys with their reasons for the report."""
        self.failed += len(failed)
        for key, reason in list(failed.items())[: MAX_REPORTED_FAILURES - len(self.failures)]:
            self.failures[key] = reason

    def stop_requested(self):
        if self.options.should_stop is not None and self.options.should_stop():
            self.stopped_early = True
        return self.stopped_early

    def batch_done(self):
        self.batches += 1
        self.finish()
        if self.options.on_batch is not None:
            self.options.on_batch(self)

    def finish(self):
        self.duration_ms = int((time.monotonic() - self._started) * 1000)
        return self

    def as_dict(self):
        return {
            "counts": dict(self.counts),
            "failed": self.failed,
            "failures": dict(self.failures),
            "stopped_early": self.stopped_early,
            "batches": self.batches,
            "duration_ms": self.duration_ms,
        }


def chunks(items: Iterable, run: StepRun) -> Iterator[list]:
    """Batches of ``run.batch_size`` from a stream, checking for a stop between batches."""
    iterator = iter(items)
    while not run.stop_requested():
        batch = list(islice(iterator, run.batch_size))
        if not batch:
            return
        yield batch


def leaving_batches(queryset, run: StepRun) -> Iterator[list]:
    """Primary keys of ``queryset`` in batches, for work that takes each row out of it: no
    ``ORDER BY`` (PostgreSQL would sort every remaining candidate per batch), and a batch
    that comes back unchanged ends the loop."""
    previous = None
    while not run.stop_requested():
        ids = list(queryset.values_list("pk", flat=True)[: run.batch_size])
        if not ids or ids == previous:
            return
        previous = ids
        yield ids


def count_deletion(outcome: storage.DeleteResult, run: StepRun):
    """Count what a storage deletion removed, the requests it made and what failed."""
    run.add("objects_deleted", len(outcome.deleted))
    run.add("delete_requests", outcome.requests)
    run.record_failures(outcome.failed)
    return outcome
