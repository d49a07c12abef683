"""Periodic-job bookkeeping shared by ``portal_cleanup`` and ``portal_dispatch``.

Each run writes a ``JobRun`` row when it starts and updates it when it ends: the
heartbeat ``/status`` reads to tell whether cron is alive. Every log line of the run
carries ``job`` and ``run_id``. A job's service returns a ``JobReport``: the one summary
of the run, from which the command prints its line and takes its exit code, so the row,
the log and the output never disagree.
"""

import contextlib
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from portal.models import JobRun
from portal.observability import bind, current_context

# No run lives this long: cron starts dispatch every minute and cleanup every 15 minutes,
# each bounded by --max-seconds in the shipped crontab.
ABANDONED_AFTER = timedelta(hours=24)
# How often the shipped crontab starts each job: a job not seen for twice that is stale
# (/ready's status checks, /status, the metrics). An outbox event older than the warning
# age is a backlog.
JOB_SCHEDULES = {
    "portal_cleanup": timedelta(minutes=15),
    "portal_dispatch": timedelta(minutes=1),
    "portal_finalize": timedelta(minutes=1),
}
OUTBOX_BACKLOG_WARN_AGE = timedelta(minutes=15)


@dataclass(frozen=True)
class JobReport:
    """What a job's command renders: the summary (its ``--json`` line), the exit code
    (``portal.exitcodes``) and, for a non-zero code, the one line that says why."""

    summary: dict
    exit_code: int
    problem: str = ""


class JobRecord:
    """What a running job reports back: its counts and its outcome."""

    def __init__(self, run):
        self.run = run
        self.counts = {}
        self.outcome = JobRun.Outcome.OK
        self.started = time.monotonic()

    @property
    def duration_ms(self):
        return int((time.monotonic() - self.started) * 1000)

    def close_abandoned_peers(self):
        """Close the other ``running`` rows of this job; call it holding the job's lock.

        The lock is exclusive across hosts and released when its holder dies, so every
        other run of the job still marked ``running`` belongs to a dead process.
        """
        if self.run is None:
            return 0
        return close_abandoned_runs(job=self.run.job, keep=self.run)


def close_abandoned_runs(*, job=None, keep=None, started_before=None, now=None):
    """Mark ``running`` rows whose process is gone as ``abandoned``; return how many.

    A killed run never records its end, and its row would say ``running`` forever. The
    caller knows the process is gone either from a lock (``keep``: its own row) or from
    age (``started_before``: no run lives that long). One conditional UPDATE: a run that
    is in fact alive and finishes later records its real outcome over this one.
    """
    rows = JobRun.objects.filter(outcome=JobRun.Outcome.RUNNING)
    if job is not None:
        rows = rows.filter(job=job)
    if keep is not None:
        rows = rows.exclude(pk=keep.pk)
    if started_before is not None:
        rows = rows.filter(started_at__lt=started_before)
    with transaction.atomic():
        return rows.update(outcome=JobRun.Outcome.ABANDONED, finished_at=now or timezone.now())


@contextlib.contextmanager
def job_run(job, *, record=True):
    """Record one run of ``job``: a ``running`` row now, its outcome and counts at the end.

    The run id of the command that called it is kept, so every record of one run shares
    it. An exception marks the run ``failed``, is kept in its counts as ``error`` (what
    ``/status`` shows) and propagates. ``record=False`` (dry runs) binds the log context
    but writes no row.
    """
    run_id = current_context().get("run_id") or uuid.uuid4().hex[:12]
    run = None
    if record:
        run = JobRun.objects.create(
            job=job, started_at=timezone.now(), host=socket.gethostname()[:255]
        )
    state = JobRecord(run)
    with bind(job=job, run_id=run_id):
        try:
            yield state
        except BaseException as exc:
            state.outcome = JobRun.Outcome.FAILED
            state.counts = {**state.counts, "error": f"{type(exc).__name__}: {exc}"[:500]}
            raise
        finally:
            if run is not None:
                JobRun.objects.filter(pk=run.pk).update(
                    finished_at=timezone.now(), outcome=state.outcome, counts=state.counts
                )
