"""Periodic-job bookkeeping: a ``JobRun`` row per run (cron's heartbeat) and the one
``JobReport`` the command prints and exits by, so row, log and output never disagree."""

import contextlib
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from portal import exitcodes
from portal.models import JobRun
from portal.observability import bind, current_context

# No run lives this long: cron starts dispatch every minute and cleanup every 15 minutes,
# each bounded by --max-seconds in the shipped crontab.
ABANDONED_AFTER = timedelta(hours=24)
# How often the shipped crontab starts each job: a job not seen for twice that is stale.
JOB_SCHEDULES = {
    "portal_cleanup": timedelta(minutes=15),
    "portal_dispatch": timedelta(minutes=1),
    "portal_finalize": timedelta(minutes=1),
}
OUTBOX_BACKLOG_WARN_AGE = timedelta(minutes=15)


@dataclass(frozen=True)
class JobReport:
    """The summary (``--json``) and, for exit code 1, the line that says why."""

    summary: dict
    problem: str = ""

    @property
    def exit_code(self):
        return exitcodes.PARTIAL if self.problem else exitcodes.OK


class JobRecord:
    """What a running job reports back: its counts and its outcome."""

    def __init__(self, run):
        self.run = run
        self.counts = {}
        self.outcome = JobRun.Outcome.OK

    def close_abandoned_peers(self):
        """Close the other ``running`` rows of this job; holding the job's lock, they are
        all dead processes'."""
        if self.run is None:
            return 0
        return abandon(JobRun.objects.filter(job=self.run.job).exclude(pk=self.run.pk))


def abandon(runs, now=None):
    """Mark the ``running`` ones of ``runs`` (whose processes are gone) ``abandoned``; how
    many. A live run would record its real end later."""
    with transaction.atomic():
        return runs.filter(outcome=JobRun.Outcome.RUNNING).update(
            outcome=JobRun.Outcome.ABANDONED, finished_at=now or timezone.now()
        )


@contextlib.contextmanager
def job_run(job, *, record=True):
    """Record one run of ``job``: a ``running`` row now, its outcome and counts at the end
    (an exception: ``failed``, with its ``error``). ``record=False`` only binds the log."""
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
