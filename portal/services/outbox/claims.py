"""Claiming due events under a lease, recording outcomes, handing rows back, requeueing.

Every write after the claim matches only rows still ``sending`` under *our* lease, so a
dispatcher that lost its lease never overwrites a newer claim.
"""

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import F, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from portal.models import OutboxEvent
from portal.observability import log_event
from portal.services.outbox.client import SendOutcome, retry_delay

logger = logging.getLogger("portal.services.outbox")

CLAIM_BATCH_SIZE = 200
COUNTS = ("delivered", "retried", "gave_up", "released", "lost_lease", "requeued")


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
        if events:
            OutboxEvent.objects.filter(pk__in=[e.id for e in events]).update(
                status=OutboxEvent.Status.SENDING, next_attempt_at=lease_until, updated_at=now
            )
    return Claim(events=events, lease_until=lease_until, expires_monotonic=expires)


def _held(claim, pks):
    """Rows of ``pks`` still ours: ``sending`` under the lease we set."""
    return OutboxEvent.objects.filter(
        pk__in=pks, status=OutboxEvent.Status.SENDING, next_attempt_at=claim.lease_until
    )


def record_outcomes(claim, delivered, failures, config, result):
    """Write one batch's outcomes: delivered rows in one UPDATE, each failure its own."""
    now = timezone.now()
    with transaction.atomic():
        recorded = 0
        if delivered:
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
    if not events:
        return 0
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
