"""The ``file.uploaded`` event: its payload and its insertion in finalize's transaction."""

from django.utils import timezone

from portal import storage
from portal.models import OutboxEvent


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
