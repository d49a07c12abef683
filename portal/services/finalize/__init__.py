"""Finalize: assemble a session's parts into its final object, in bounded request time
(docs/design.md, "How an upload works", step 5); ``portal_finalize`` finishes the assemblies
whose process died, one claimed expired lease at a time, under the session's lock as a
request would (a busy lock is a live holder)."""

import time

from portal import locks, storage
from portal.models import JobRun, UploadSession
from portal.services import jobs
from portal.services.errors import Gone, InsufficientStorage
from portal.services.finalize import lease
from portal.services.finalize.assembly import PartCorrupt, assemble, fail
from portal.services.finalize.request import finalize_session

__all__ = ["PartCorrupt", "assemble", "finalize_session", "run_finalize_job"]

JOB = "portal_finalize"
# A session whose assembly keeps failing (not a storage outage, which is retried as long
# as it lasts) is failed after this many attempts rather than retried every minute.
MAX_ATTEMPTS = 10


def run_finalize_job(*, max_seconds=None):
    started = time.monotonic()
    counts = {"completed": 0, "failed": 0, "busy": 0, "errors": 0}
    stopped = "drained"
    tried = set()
    with jobs.job_run(JOB) as run:
        while True:
            if max_seconds is not None and time.monotonic() - started >= max_seconds:
                stopped = "time"
                break
            session_pk = lease.claim_expired()
            if session_pk in tried:  # it failed on an outage in this run: the next run retries
                lease.hand_back(session_pk, outage=True)
                session_pk = None
            if session_pk is None:
                break
            tried.add(session_pk)
            counts[_take_over(session_pk)] += 1
        run.counts = counts
        run.outcome = JobRun.Outcome.PARTIAL if counts["errors"] else JobRun.Outcome.OK
    summary = {
        "job": JOB,
        "outcome": run.outcome,
        **counts,
        "stopped": stopped,
        "duration_ms": int((time.monotonic() - started) * 1000),
    }
    problem = (
        f"{counts['errors']} assembly(ies) failed on a storage outage and stay finalizing; "
        "the next run retries them (see the storage.unavailable records)"
    )
    return jobs.JobReport(summary, problem if counts["errors"] else "")


def _take_over(session_pk):
    try:
        with locks.hold(f"finalize:{session_pk}"):
            session = UploadSession.objects.get(pk=session_pk)
            if session.assembly_attempts > MAX_ATTEMPTS:
                fail(session, f"the assembly gave up after {MAX_ATTEMPTS} attempts")
                return "failed"
            assemble(session_pk)
    except locks.LockBusy:
        return "busy"
    except Gone:
        return "failed"
    except (storage.StorageUnavailable, InsufficientStorage):
        lease.hand_back(session_pk, outage=True)
        return "errors"
    return "completed"
