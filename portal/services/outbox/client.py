"""Talking to the runner: the settings a dispatch run uses, the signature, the retry delay,
and signed POSTs over one keep-alive connection that never raise."""

import base64
import hashlib
import hmac
import http.client
import random
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from django.conf import settings

from portal.httpclient import KeepAliveConnection, backoff_delay

MAX_ERROR_LENGTH = 200
RESPONSE_READ_LIMIT = 64 * 1024
USER_AGENT = "ingest-portal-dispatch/1"
# Stop sending a claimed batch when less than one delivery deadline (timeout: the whole
# exchange, ``httpclient``) plus this margin is left of its lease, and hand the rest back:
# the delivery in flight always ends, and is recorded, before the lease runs out.
LEASE_MARGIN_SECONDS = 5.0


class ConfigurationError(Exception):
    """Dispatch cannot run with these settings; the message names the variable to fix."""


@dataclass(frozen=True)
class DispatchConfig:
    """The settings one dispatch run uses (validated by ``boot.config`` and the checks)."""

    endpoint: str
    secret: str
    timeout: float
    base_delay: float
    max_delay: float
    max_attempts: int

    @classmethod
    def from_settings(cls):
        if not settings.PORTAL_RUNNER_ENDPOINT:
            raise ConfigurationError(
                "PORTAL_RUNNER_ENDPOINT is not set: nowhere to deliver outbox events."
            )
        return cls(
            endpoint=settings.PORTAL_RUNNER_ENDPOINT,
            secret=settings.PORTAL_RUNNER_AUTH_SECRET,
            timeout=settings.PORTAL_RUNNER_TIMEOUT_SECONDS,
            base_delay=settings.PORTAL_OUTBOX_BASE_DELAY_SECONDS,
            max_delay=settings.PORTAL_OUTBOX_MAX_DELAY_SECONDS,
            max_attempts=settings.PORTAL_OUTBOX_MAX_ATTEMPTS,
        )

    @property
    def lease_seconds(self):
        """How long a claim protects its rows: twice a delivery deadline plus the margin,
        so a dead dispatcher's rows come back within a minute or so."""
        return 2 * (self.timeout + LEASE_MARGIN_SECONDS)


def sign(body, secret):
    """The ``X-Portal-Signature`` value: HMAC-SHA256 of the exact body bytes, hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def retry_delay(attempts_before, config, *, rand=random.random):
    """Seconds until the next attempt after a failed one (``httpclient.backoff_delay``)."""
    return backoff_delay(attempts_before, base=config.base_delay, cap=config.max_delay, rand=rand)


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
    """POSTs events over one persistent connection; credentials in the URL go as HTTP
    Basic auth and are scrubbed from every error text."""

    def __init__(self, config):
        parts = urlsplit(config.endpoint)
        self.config = config
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.base_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        self._redact = [config.secret]
        if parts.username is not None:
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            token = base64.b64encode(credentials.encode()).decode()
            self.base_headers["Authorization"] = f"Basic {token}"
            password = parts.password or ""
            self._redact += [credentials, token, password, unquote(password)]
        self._connection = KeepAliveConnection(
            parts.scheme, parts.hostname, parts.port, timeout=config.timeout
        )

    def close(self):
        self._connection.close()

    def send(self, event_id, event_type, body, *, attempt, while_waiting=None):
        """POST one event; never raises for network or HTTP errors. ``while_waiting`` runs
        once, while the runner works on the request, so bookkeeping costs no wall time."""
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
            answer = self._connection.exchange(
                "POST",
                self.path,
                headers=headers,
                body=body,
                read_limit=RESPONSE_READ_LIMIT,
                while_waiting=idle,
            )
        except (OSError, http.client.HTTPException) as exc:
            outcome = SendOutcome(ok=False, error=type(exc).__name__, detail=self._scrub(exc))
        else:
            ok = 200 <= answer.status < 300
            detail = "" if ok else answer.reason[:60]
            outcome = SendOutcome(ok=ok, status=answer.status, detail=detail)
        outcome.duration_ms = int((time.monotonic() - started) * 1000)
        idle()
        return outcome

    def _scrub(self, exc):
        text = str(exc)
        for secret in self._redact:
            if secret:
                text = text.replace(secret, "[redacted]")
        return text[:160]
