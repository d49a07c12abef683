"""One dispatch run: claim, send, record, until nothing is due or a budget runs out."""

import logging
import time

from portal.models import JobRun, OutboxEvent
from portal.observability import log_event
from portal.services import jobs
from portal.services.outbox.claims import (
    CLAIM_BATCH_SIZE,
    DispatchResult,
    Failure,
    claim_due,
    record_outcomes,
    release,
    requeue_failed,
)
from portal.services.outbox.client import LEASE_MARGIN_SECONDS, DispatchConfig, RunnerClient

logger = logging.getLogger("portal.services.outbox")
JOB = "portal_dispatch"
# The run's counts carry the events still waiting after it: /status draws them per run.
BACKLOG_KEY = "backlog"
BACKLOG_CAP = 10_000


def run_dispatch(*, limit=None, max_seconds=None, retry_failed=False):
    """``portal_dispatch``: one recorded run (``ConfigurationError`` before any)."""
    config = DispatchConfig.from_settings()
    with jobs.job_run(JOB) as run:
        requeued = requeue_failed() if retry_failed else 0
        result = dispatch_due(config, limit=limit, max_seconds=max_seconds)
        result.requeued = requeued
        run.counts = {**result.counts(), BACKLOG_KEY: backlog_left()}
        run.outcome = JobRun.Outcome.PARTIAL if result.gave_up else JobRun.Outcome.OK
    summary = {
        "job": JOB,
        "outcome": run.outcome,
        **result.counts(),
        "stopped": result.stopped,
        "duration_ms": result.duration_ms,
    }
    problem = (
        f"{result.gave_up} event(s) gave up after PORTAL_OUTBOX_MAX_ATTEMPTS attempts and "
        "are now failed; fix the runner, then run portal_dispatch --retry-failed."
    )
    return jobs.JobReport(summary, problem if result.gave_up else "")


def backlog_left():
    """Events pending or sending, counted up to ``BACKLOG_CAP`` on ``outbox_status_next``."""
    waiting = OutboxEvent.objects.filter(
        status__in=(OutboxEvent.Status.PENDING, OutboxEvent.Status.SENDING)
    )
    return waiting.values("status")[:BACKLOG_CAP].count()


def dispatch_due(config, *, limit=None, max_seconds=None, batch_size=CLAIM_BATCH_SIZE):
    """Deliver due events until none is due, ``limit`` were attempted, or time runs out:
    none starts after ``max_seconds``, the one in flight ends within its own deadline
    (cutting it would count a failure against an event the runner may accept)."""
    started = time.monotonic()
    deadline = started + max_seconds if max_seconds else None
    result = DispatchResult()
    with RunnerClient(config) as client:
        while True:
            if limit is not None and result.attempted >= limit:
                result.stopped = "limit"
                break
            if deadline is not None and time.monotonic() >= deadline:
                result.stopped = "time"
                break
            size = batch_size if limit is None else min(batch_size, limit - result.attempted)
            claim = claim_due(config, batch_size=size)
            if not claim.events:
                break
            if not _send_batch(client, claim, config, deadline, result):
                result.stopped = "time"
                break
    result.duration_ms = int((time.monotonic() - started) * 1000)
    return result


def _send_batch(client, claim, config, deadline, result):
    """Send one claimed batch (logging while the next request is in flight), record it;
    False when the time budget ran out mid-batch."""
    delivered, failures, unlogged = [], [], []

    def write_logs():
        for event, outcome in unlogged:
            _log_dispatched(event, outcome)
        unlogged.clear()

    in_time = True
    sent = 0
    for event in claim.events:
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            in_time = False
            break
        if claim.expires_monotonic - now < config.timeout + LEASE_MARGIN_SECONDS:
            break  # the lease could run out during this request: claim afresh instead
        outcome = client.send(
            event.id,
            event.event_type,
            event.body.encode(),
            attempt=event.attempts + 1,
            while_waiting=write_logs,
        )
        sent += 1
        if outcome.ok:
            delivered.append(event)
            unlogged.append((event, outcome))
        else:
            failures.append(Failure(event, outcome))
    write_logs()
    record_outcomes(claim, delivered, failures, config, result)
    result.released += release(claim, claim.events[sent:])
    return in_time


def _log_dispatched(event, outcome):
    log_event(
        logger,
        "outbox.dispatched",
        f"delivered {event.event_type} (HTTP {outcome.status})",
        event_id=str(event.id),
        attempt=event.attempts + 1,
        duration_ms=outcome.duration_ms,
    )
