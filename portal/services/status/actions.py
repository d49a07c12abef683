"""The one change ``/status`` makes: put a failed outbox event back in the queue."""

import logging
import uuid

from portal.models import OutboxEvent
from portal.observability import log_event
from portal.services import outbox
from portal.services.errors import BadRequest, Conflict, NotFound

logger = logging.getLogger("portal.services.status")


def parse_event_id(raw):
    """The UUID of the form's ``event_id``; a clear 400 for anything else."""
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise BadRequest(
            "event_id must be an outbox event's UUID", code="invalid_event_id"
        ) from None


def requeue_event(event_id, *, user):
    """Make one ``failed`` event ``pending`` and due now; 404 or 409 when it cannot."""
    if outbox.requeue_failed(ids=[event_id]) == 1:
        log_event(
            logger,
            "outbox.requeued",
            f"outbox event requeued from /status by {user.get_username()}",
            event_id=str(event_id),
            user=user.get_username(),
        )
        return
    current = OutboxEvent.objects.filter(pk=event_id).values_list("status", flat=True).first()
    if current is None:
        raise NotFound("no outbox event has this id", code="event_not_found")
    raise Conflict(
        f"the event is {current}, not failed: nothing to requeue", code="event_not_failed"
    )
