"""Periodic-job bookkeeping shared by ``portal_cleanup`` and ``portal_dispatch``.

Each run writes a ``JobRun`` row when it starts and updates it when it ends: the
heartbeat ``/status`` reads to tell whether cron is alive. Every log line of the run
carries ``job`` and ``run_id``.
"""

import contextlib
import socket
import time
import uuid

from django.utils import timezone

from portal.models import JobRun
from portal.observability import bind, current_context


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


@contextlib.contextmanager
def job_run(job, *, record=True):
    """Record one run of ``job``: a ``running`` row now, its outcome and counts at the end.

    The run id of the command that called it is kept, so every record of one run shares
    it. An exception marks the run ``failed`` and propagates. ``record=False`` (dry runs)
    binds the log context but writes no row.
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
        except BaseException:
            state.outcome = JobRun.Outcome.FAILED
            raise
        finally:
            if run is not None:
                JobRun.objects.filter(pk=run.pk).update(
                    finished_at=timezone.now(), outcome=state.outcome, counts=state.counts
                )
