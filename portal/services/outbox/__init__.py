"""The durable outbox: events (``file.uploaded``, below) written in the transaction of the
state they announce, delivered at least once by ``run_dispatch`` (docs/design.md,
"Periodic jobs")."""

import uuid

from django.utils import timezone

from portal import storage
from portal.models import OutboxEvent
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


def build_file_uploaded_payload(file, *, event_id, occurred_at):
    """The ``file.uploaded`` payload (docs/api.md): additive changes only, never a secret."""
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
            "storage": storage.backend().final_location(file.storage_key),
        },
        "actor": {"user_id": user.pk, "username": user.get_username()},
    }


def enqueue_file_uploaded(file):
    """The ``file.uploaded`` event (one per file), inside the transaction that stores it."""
    now, event_id = timezone.now(), uuid.uuid4()
    payload = build_file_uploaded_payload(file, event_id=event_id, occurred_at=now)
    event, _ = OutboxEvent.objects.get_or_create(
        event_type=OutboxEvent.FILE_UPLOADED,
        idempotency_key=str(file.id),
        defaults={
            "id": event_id,
            "aggregate_id": str(file.id),
            "payload": payload,
            "next_attempt_at": now,
        },
    )
    return event
