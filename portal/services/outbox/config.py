"""What one dispatch run needs from the settings, the signature and the retry delay."""

import hashlib
import hmac
import random
from dataclasses import dataclass

from django.conf import settings

from portal.httpclient import backoff_delay

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
