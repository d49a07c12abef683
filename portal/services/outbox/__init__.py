"""The durable outbox: events written in the transaction of the state they announce,
delivered at least once by ``run_dispatch`` (docs/design.md, "Periodic jobs")."""

from portal.services.outbox.client import (
    LEASE_MARGIN_SECONDS,
    ConfigurationError,
    DispatchConfig,
    SendOutcome,
    retry_delay,
    sign,
)
from portal.services.outbox.dispatch import (
    DispatchResult,
    Failure,
    claim_due,
    dispatch_due,
    payload_text,
    record_outcomes,
    requeue_failed,
    run_dispatch,
)
from portal.services.outbox.events import build_file_uploaded_payload, enqueue_file_uploaded

__all__ = [
    "LEASE_MARGIN_SECONDS",
    "ConfigurationError",
    "DispatchConfig",
    "DispatchResult",
    "Failure",
    "SendOutcome",
    "build_file_uploaded_payload",
    "claim_due",
    "dispatch_due",
    "enqueue_file_uploaded",
    "payload_text",
    "record_outcomes",
    "requeue_failed",
    "retry_delay",
    "run_dispatch",
    "sign",
]
