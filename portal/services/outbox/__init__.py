"""The durable outbox: events written in the same transaction as the state they announce,
delivered to the runner at least once by ``run_dispatch`` (``portal_dispatch``).

Claims take a lease (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL) and outcomes are
UPDATEs conditional on still holding it, so dispatchers on several hosts never send one
event at once, and one whose lease ran out records nothing. Modules: ``events``,
``config``, ``client``, ``claims``, ``dispatch``.
"""

from portal.services.outbox.claims import (
    Claim,
    Failure,
    claim_due,
    payload_text,
    record_outcomes,
    release,
    requeue_failed,
)
from portal.services.outbox.client import RunnerClient, SendOutcome
from portal.services.outbox.config import (
    LEASE_MARGIN_SECONDS,
    ConfigurationError,
    DispatchConfig,
    retry_delay,
    sign,
)
from portal.services.outbox.dispatch import DispatchResult, dispatch_due, run_dispatch
from portal.services.outbox.events import build_file_uploaded_payload, enqueue_file_uploaded

__all__ = [
    "LEASE_MARGIN_SECONDS",
    "Claim",
    "ConfigurationError",
    "DispatchConfig",
    "DispatchResult",
    "Failure",
    "RunnerClient",
    "SendOutcome",
    "build_file_uploaded_payload",
    "claim_due",
    "dispatch_due",
    "enqueue_file_uploaded",
    "payload_text",
    "record_outcomes",
    "release",
    "requeue_failed",
    "retry_delay",
    "run_dispatch",
    "sign",
]
