"""Log context and the event vocabulary: what every portal log line carries.

Context (request id, job, run id, ...) lives in a ContextVar so it follows the request or
the job through every logger; ``ContextFilter`` copies it onto each record. Services log
state transitions with ``log_event`` so each line has its ``event`` name from DESIGN.md.
"""

import contextlib
import contextvars
import logging

EVENTS = frozenset(
    {
        "session.created",
        "part.received",
        "file.stored",
        "session.aborted",
        "session.expired",
        "outbox.dispatched",
        "outbox.delivery_failed",
        "outbox.gave_up",
        "cleanup.step",
        "cleanup.finished",
        "cleanup.skipped",
        "ready.check_failed",
    }
)
CONTEXT_FIELDS = (
    "request_id",
    "session_id",
    "part_number",
    "file_id",
    "event_id",
    "job",
    "run_id",
    "duration_ms",
)

_EMPTY: dict = {}
_context: contextvars.ContextVar[dict] = contextvars.ContextVar(
    "portal_log_context", default=_EMPTY
)


@contextlib.contextmanager
def bind(**fields):
    """Add ``fields`` to every record logged inside the block (nested blocks merge)."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def current_context():
    """The fields bound right now, for code that must pass them across threads."""
    return dict(_context.get())


def log_event(logger, event, message, *, level=logging.INFO, **fields):
    """Log one vocabulary event with its context fields as structured ``extra``."""
    if event not in EVENTS:
        raise ValueError(f"unknown log event {event!r}; add it to portal.observability.EVENTS")
    logger.log(level, message, extra={"event": event, **fields})


class ContextFilter(logging.Filter):
    """Copy the bound context onto each record without overwriting explicit ``extra``."""

    def filter(self, record):
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True
