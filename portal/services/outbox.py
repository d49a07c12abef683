"""The durable outbox: events written in the same transaction as the state they announce.

``enqueue_file_uploaded`` is called by finalize inside its transaction, so an event exists
exactly when a file is stored. ``dispatch_due`` (``manage.py portal_dispatch`` on cron)
delivers due events to the runner, at least once:

1. Claim a small batch of due rows in a short transaction: ``pending`` rows whose
   ``next_attempt_at`` passed, or ``sending`` rows whose lease ran out (a dispatcher died
   mid-send). ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so dispatchers on several
   hosts never claim the same row; SQLite's ``BEGIN IMMEDIATE`` serialises the claim. The
   claim sets ``sending`` and ``next_attempt_at`` = the lease deadline.
2. POST each event outside any transaction, over one keep-alive connection, signed.
3. Record the outcomes with conditional UPDATEs that match ``sending`` *and our lease*: a
   dispatcher whose lease ran out and whose rows were claimed again records nothing.

A crash between 2 and 3 leaves the rows ``sending`` until their lease runs out; the next
run sends them again. The runner deduplicates by ``event_id``.
"""

import base64
import hashlib
import hmac
import http.client
import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from boot.config import is_http_url
from portal import storage
from portal.models import OutboxEvent
from portal.observability import log_event

logger = logging.getLogger(__name__)

CLAIM_BATCH_SIZE = 200
# Stop sending a claimed batch when less than a full request (timeout) plus this margin is
# left of its lease, and hand the rest back: a slow runner must not outlive our lease.
LEASE_MARGIN_SECONDS = 5.0
MAX_ERROR_LENGTH = 200
RESPONSE_READ_LIMIT = 64 * 1024
USER_AGENT = "ingest-portal-dispatch/1"


def build_file_uploaded_payload(file, *, event_id, occurred_at):
    """DESIGN.md's ``file.uploaded`` payload: additive changes only, never a secret."""
    user = file.uploaded_by
    return {
        "event_type": OutboxEvent.FILE_UPLOADED,
        "event_id": str(event_id),
        "occurred_at": occurred_at.isoformat(),
        "file": {
            "id": str(file.id),
            "filename": file.original_filename,
            "content_type": file.content_type,
            "size_bytes": file.size_bytes,
            "sha256": file.sha256,
            "storage": {
                "backend": storage.backend_name(),
                "bucket": storage.bucket_name(),
                "key": file.storage_key,
            },
        },
        "actor": {"user_id": user.pk, "username": user.get_username()},
    }


def enqueue_file_uploaded(file):
    """Create the ``file.uploaded`` event for a stored file (idempotent per file).

    Call inside the transaction that marks the file stored.
    """
    now = timezone.now()
    event, _ = OutboxEvent.objects.get_or_create(
        event_type=OutboxEvent.FILE_UPLOADED,
        idempotency_key=str(file.id),
        defaults={"aggregate_id": str(file.id), "payload": {}, "next_attempt_at": now},
    )
    if not event.payload:
        event.payload = build_file_uploaded_payload(file, event_id=event.id, occurred_at=now)
        event.save(update_fields=["payload", "updated_at"])
    return event


# --- configuration -------------------------------------------------------------------------


class ConfigurationError(Exception):
    """Dispatch cannot run with these settings; the message names the variable to fix."""


@dataclass(frozen=True)
class DispatchConfig:
    """The settings one dispatch run uses, validated once up front."""

    endpoint: str
    secret: str
    timeout: float
    base_delay: float
    max_delay: float
    max_attempts: int

    @classmethod
    def from_settings(cls):
        endpoint = settings.PORTAL_RUNNER_ENDPOINT
        if not endpoint:
            raise ConfigurationError(
                "PORTAL_RUNNER_ENDPOINT is not set: nowhere to deliver outbox events."
            )
        if not is_http_url(endpoint):
            raise ConfigurationError(
                "PORTAL_RUNNER_ENDPOINT must be an http:// or https:// URL with a host."
            )
        if not settings.PORTAL_RUNNER_AUTH_SECRET:
            raise ConfigurationError(
                "PORTAL_RUNNER_AUTH_SECRET is not set: the runner could not verify events."
            )
        if settings.PORTAL_RUNNER_TIMEOUT_SECONDS <= 0:
            raise ConfigurationError("PORTAL_RUNNER_TIMEOUT_SECONDS must be above 0.")
        if settings.PORTAL_OUTBOX_BASE_DELAY_SECONDS > settings.PORTAL_OUTBOX_MAX_DELAY_SECONDS:
            raise ConfigurationError(
                "PORTAL_OUTBOX_BASE_DELAY_SECONDS must not exceed PORTAL_OUTBOX_MAX_DELAY_SECONDS."
            )
        return cls(
            endpoint=endpoint,
            secret=settings.PORTAL_RUNNER_AUTH_SECRET,
            timeout=settings.PORTAL_RUNNER_TIMEOUT_SECONDS,
            base_delay=max(0.0, settings.PORTAL_OUTBOX_BASE_DELAY_SECONDS),
            max_delay=max(0.0, settings.PORTAL_OUTBOX_MAX_DELAY_SECONDS),
            max_attempts=settings.PORTAL_OUTBOX_MAX_ATTEMPTS,
        )

    @property
    def lease_seconds(self):
        """How long a claim protects its rows: one full request plus the margin, twice over.

        Long enough for a healthy batch (milliseconds a POST) and for the one slow request
        in progress when we stop sending; short enough that a dead dispatcher's rows come
        back within a minute or so.
        """
        return 2 * (self.timeout + LEASE_MARGIN_SECONDS)


def sign(body, secret):
    """The ``X-Portal-Signature`` value: HMAC-SHA256 of the exact body bytes, hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payload_text():
    """The payload as the database stores it (JSON text): the exact body we POST and sign.

    Sending the stored text skips decoding and re-encoding every payload, and keeps the
    body identical across attempts.
    """
    return Cast("payload", output_field=TextField())


def retry_delay(attempts_before, config, *, rand=random.random):
    """Seconds until the next attempt after a failed one: exponential, capped, equal jitter.

    ``attempts_before`` is how many attempts preceded the failed one (0 for the first), so
    the first retry waits ``base``, then ``2 * base``, ... up to ``max_delay``. Equal jitter
    (half fixed, half random) keeps at least half the backoff while spreading a burst of
    failures so they do not all come back in the same second.
    """
    exponent = min(attempts_before, 62)
    delay = min(config.max_delay, config.base_delay * (2**exponent))
    return delay / 2 + rand() * delay / 2


# --- the runner client ---------------------------------------------------------------------


@dataclass
class SendOutcome:
    """What one POST came to: ``ok``, plus the HTTP status or the error class and text."""

    ok: bool
    status: int | None = None
    error: str = ""
    detail: str = ""
    duration_ms: int = 0

    @property
    def summary(self):
        """``last_error``: short, and never the secret or the URL's credentials."""
        if self.status is not None:
            return f"HTTP {self.status} {self.detail}".strip()[:MAX_ERROR_LENGTH]
        return f"{self.error}: {self.detail}".strip(": ")[:MAX_ERROR_LENGTH]


class RunnerClient:
    """POSTs events to the runner over one persistent connection, reconnecting on failure.

    Uses the standard library's ``http.client``: one keep-alive connection for the whole
    run. A request that fails on a *reused* connection because the server had closed it
    (the usual keep-alive race) is retried once on a fresh connection; anything else is a
    failed attempt for the event.
    """

    STALE_CONNECTION_ERRORS = (
        http.client.RemoteDisconnected,
        ConnectionResetError,
        BrokenPipeError,
    )

    def __init__(self, config):
        parts = urlsplit(config.endpoint)
        self.config = config
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.base_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        self._redact = [config.secret]
        if parts.username is not None:
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            token = base64.b64encode(credentials.encode()).decode()
            self.base_headers["Authorization"] = f"Basic {token}"
            self._redact += [credentials, token, parts.password or ""]
        self._conn = None
        self._used = False

    def _connect(self):
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        self._conn = cls(self.host, self.port, timeout=self.config.timeout)
        self._used = False

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, event_id, event_type, body, *, attempt, while_waiting=None):
        """POST one event; never raises for network or HTTP errors.

        ``while_waiting`` runs once per call, while the runner works on the request (after
        it is written, before the answer is read; or after a failure): the caller's
        bookkeeping of the previous event then costs no wall-clock time.
        """
        headers = {
            **self.base_headers,
            "X-Portal-Event-Id": str(event_id),
            "X-Portal-Event-Type": event_type,
            "X-Portal-Attempt": str(attempt),
            "X-Portal-Signature": sign(body, self.config.secret),
        }
        waiting = [while_waiting] if while_waiting else []

        def idle():
            while waiting:
                waiting.pop()()

        started = time.monotonic()
        try:
            outcome = self._post_retrying_stale(body, headers, idle)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            outcome = SendOutcome(ok=False, error=type(exc).__name__, detail=self._scrub(exc))
        outcome.duration_ms = int((time.monotonic() - started) * 1000)
        idle()
        return outcome

    def _post_retrying_stale(self, body, headers, idle):
        reused = self._conn is not None and self._used
        try:
            return self._post(body, headers, idle)
        except self.STALE_CONNECTION_ERRORS:
            if not reused:
                raise
            self.close()
            return self._post(body, headers, idle)

    def _post(self, body, headers, idle):
        if self._conn is None:
            self._connect()
        self._conn.request("POST", self.path, body=body, headers=headers)
        idle()
        response = self._conn.getresponse()
        self._used = True
        response.read(RESPONSE_READ_LIMIT)
        if not response.isclosed() or response.will_close:
            self.close()  # an oversized body or "Connection: close": start afresh next time
        if 200 <= response.status < 300:
            return SendOutcome(ok=True, status=response.status)
        return SendOutcome(ok=False, status=response.status, detail=response.reason[:60])

    def _scrub(self, exc):
        text = str(exc)
        for secret in self._redact:
            if secret:
                text = text.replace(secret, "[redacted]")
        return text[:120]


# --- claiming and recording ----------------------------------------------------------------


@dataclass
class Claim:
    """A batch of rows this dispatcher holds until ``lease_until``.

    ``events`` are light rows (``id``, ``event_type``, ``body``, ``attempts``), not model
    instances: building thousands of models is a measurable share of a dispatch run.
    """

    events: list
    lease_until: object
    expires_monotonic: float


def _due_with_status(status, now, limit):
    """Due rows of one status, oldest first, straight off the (status, next_attempt_at) index.

    One query per status rather than ``status IN (...)``: with two statuses the database
    must sort every due row to return the first few, which makes each claim O(backlog).
    """
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
    """Lock up to ``batch_size`` due rows, mark them ``sending`` under a fresh lease.

    Expired leases first (rows a dead dispatcher left), then pending rows oldest first. One
    short transaction; rows other dispatchers hold are skipped, not waited for.
    """
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


@dataclass
class Failure:
    event: OutboxEvent
    outcome: SendOutcome


@dataclass
class DispatchResult:
    """What one dispatch run did; the command renders it and picks the exit code."""

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
        return {
            "delivered": self.delivered,
            "retried": self.retried,
            "gave_up": self.gave_up,
            "released": self.released,
            "lost_lease": self.lost_lease,
            "requeued": self.requeued,
        }

    def as_dict(self):
        return {
            "job": "portal_dispatch",
            **self.counts(),
            "stopped": self.stopped,
            "duration_ms": self.duration_ms,
        }


def record_outcomes(claim, delivered, failures, config, result):
    """Write one batch's outcomes: delivered rows in one UPDATE, each failure its own.

    Every UPDATE matches only rows still under our lease, so a row another dispatcher
    claimed after our lease ran out keeps its new owner's state.
    """
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


# --- the run -------------------------------------------------------------------------------


def requeue_failed():
    """Give every ``failed`` event a fresh set of attempts, due now (after a runner fix)."""
    now = timezone.now()
    return OutboxEvent.objects.filter(status=OutboxEvent.Status.FAILED).update(
        status=OutboxEvent.Status.PENDING,
        attempts=0,
        next_attempt_at=now,
        updated_at=now,
    )


def dispatch_due(config, *, limit=None, max_seconds=None, batch_size=CLAIM_BATCH_SIZE):
    """Deliver due events until none is due, ``limit`` were attempted, or time runs out."""
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
    """Send one claimed batch, record it; False when the time budget ran out mid-batch.

    Each ``outbox.dispatched`` line is written while the next request is in flight.
    """
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


__all__ = [
    "ConfigurationError",
    "DispatchConfig",
    "DispatchResult",
    "RunnerClient",
    "build_file_uploaded_payload",
    "claim_due",
    "dispatch_due",
    "enqueue_file_uploaded",
    "payload_text",
    "requeue_failed",
    "retry_delay",
    "sign",
]
