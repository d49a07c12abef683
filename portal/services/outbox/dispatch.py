"""One dispatch run: claim due events under a lease, send them, record the outcomes, until
nothing is due or a budget runs out; and the requeue of failed events."""

import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import F, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from portal.models import JobRun, OutboxEvent
from portal.observability import log_event
from portal.services import jobs
from portal.services.outbox.client import (
    LEASE_MARGIN_SECONDS,
    DispatchConfig,
    RunnerClient,
    SendOutcome,
    retry_delay,
)

logger = logging.getLogger("portal.services.outbox")
JOB = "portal_dispatch"
CLAIM_BATCH_SIZE = 200
COUNTS = ("delivered", "retried", "gave_up", "released", "lost_lease", "requeued")
# The run's counts carry the events still waiting after it: /status draws them per run.
BACKLOG_KEY = "backlog"
BACKLOG_CAP = 10_000


@dataclass
class Claim:
    """Rows this dispatcher holds until ``lease_until``: named tuples, not models (building
    thousands of models is a measurable share of a run)."""

    events: list
    lease_until: object
    expires_monotonic: float


@dataclass
class Failure:
    """A claimed event (anything with ``id`` and ``attempts``) whose delivery failed."""

    event: Any
    outcome: SendOutcome


@dataclass
class DispatchResult:
    """What one dispatch run did; ``run_dispatch`` turns it into the run's report."""

    delivered: int = 0
    retried: int = 0
    gave_up: int = 0
    released: int = 0
    lost_lease: int = 0
    requeued: int = 0
    stopped: str = "drained"
    duration_ms: int = 0

    @property
    def attempted(self):
        return self.delivered + self.retried + self.gave_up + self.lost_lease

    def counts(self):
        return {name: getattr(self, name) for name in COUNTS}


def payload_text():
    """The payload as stored (JSON text): the exact body we POST and sign, identical across
    attempts and never decoded."""
    return Cast("payload", output_field=TextField())


def _due_with_status(status, now, limit):
    """Due rows of one status, oldest first, off the (status, next_attempt_at) index: with
    ``status IN (...)`` the database would sort every due row, O(backlog) a claim."""
    query = (
        OutboxEvent.objects.filter(status=status, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .annotate(body=payload_text())
        .values_list("id", "event_type", "body", "attempts", named=True)
    )
    if connection.features.has_select_for_update_skip_locked:
        query = query.select_for_update(skip_locked=True)
    return list(query[:limit])


def claim_due(config, *, batch_size=CLAIM_BATCH_SIZE):
    """Lock up to ``batch_size`` due rows (expired leases first), mark them ``sending``
    under a fresh lease; rows other dispatchers hold are skipped, not waited for."""
    now = timezone.now()
    lease_until = now + timedelta(seconds=config.lease_seconds)
    expires = time.monotonic() + config.lease_seconds
    with transaction.atomic():
        events = _due_with_status(OutboxEvent.Status.SENDING, now, batch_size)
        if len(events) < batch_size:
            events += _due_with_status(OutboxEvent.Status.PENDING, now, batch_size - len(events))
        OutboxEvent.objects.filter(pk__in=[e.id for e in events]).update(
            status=OutboxEvent.Status.SENDING, next_attempt_at=lease_until, updated_at=now
        )
    return Claim(events=events, lease_until=lease_until, expires_monotonic=expires)


def _held(claim, pks):
    """Rows of ``pks`` still ours, ``sending`` under the lease we set: every write after the
    claim goes through here, so a dispatcher that lost its lease never overwrites a newer
    claim."""
    return OutboxEvent.objects.filter(
        pk__in=pks, status=OutboxEvent.Status.SENDING, next_attempt_at=claim.lease_until
    )


def record_outcomes(claim, delivered, failures, config, result):
    """Write one batch's outcomes: delivered rows in one UPDATE, each failure its own."""
    now = timezone.now()
    with transaction.atomic():
        recorded = _held(claim, [e.id for e in delivered]).update(
            status=OutboxEvent.Status.DELIVERED,
            delivered_at=now,
            attempts=F("attempts") + 1,
            last_error="",
            updated_at=now,
        )
        result.delivered += recorded
        result.lost_lease += len(delivered) - recorded
        outcomes = [_record_failure(claim, f, config, now) for f in failures]
    for failure, (state, next_at) in zip(failures, outcomes, strict=True):
        _log_failure(failure, state, next_at, config, result)


def _record_failure(claim, failure, config, now):
    attempts = failure.event.attempts + 1
    if attempts >= config.max_attempts:
        state, next_at = OutboxEvent.Status.FAILED, now
    else:
        next_at = now + timedelta(seconds=retry_delay(failure.event.attempts, config))
        state = OutboxEvent.Status.PENDING
    updated = _held(claim, [failure.event.id]).update(
        status=state,
        attempts=attempts,
        next_attempt_at=next_at,
        last_error=failure.outcome.summary,
        updated_at=now,
    )
    return (state if updated else None), next_at


def _log_failure(failure, state, next_at, config, result):
    event, outcome = failure.event, failure.outcome
    attempt = event.attempts + 1
    if state is None:
        result.lost_lease += 1
        return
    fields = {
        "event_id": str(event.id),
        "attempt": attempt,
        "status_code": outcome.status,
        "error": outcome.error or None,
        "duration_ms": outcome.duration_ms,
    }
    if state == OutboxEvent.Status.FAILED:
        result.gave_up += 1
        log_event(
            logger,
            "outbox.gave_up",
            f"gave up on event after {attempt} attempts: {outcome.summary}",
            level=logging.ERROR,
            max_attempts=config.max_attempts,
            **fields,
        )
        return
    result.retried += 1
    log_event(
        logger,
        "outbox.delivery_failed",
        f"delivery failed ({outcome.summary}); retrying at {next_at.isoformat()}",
        level=logging.WARNING,
        next_attempt_at=next_at.isoformat(),
        **fields,
    )


def release(claim, events):
    """Hand claimed but unsent rows back, due now, without counting an attempt."""
    return _held(claim, [e.id for e in events]).update(
        status=OutboxEvent.Status.PENDING, next_attempt_at=timezone.now()
    )


def requeue_failed(ids=None):
    """Give ``failed`` events (all, or those of ``ids``) a fresh set of attempts, due now."""
    now = timezone.now()
    failed = OutboxEvent.objects.filter(status=OutboxEvent.Status.FAILED)
    if ids is not None:
        failed = failed.filter(pk__in=ids)
    with transaction.atomic():
        return failed.update(
            status=OutboxEvent.Status.PENDING, attempts=0, next_attempt_at=now, updated_at=now
        )


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
    with contextlib.closing(RunnerClient(config)) as client:
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
