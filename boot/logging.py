"""The ``LOGGING`` dictConfig: JSON lines (production) or console lines (development).

Both formats go to stdout through one handler, so Django's, gunicorn's and the portal's
loggers all share the format and the context fields of ``portal.observability``.
"""

import logging
from datetime import UTC, datetime

from pythonjsonlogger.json import JsonFormatter

RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class PortalJsonFormatter(JsonFormatter):
    """One JSON object per line: timestamp (UTC ISO 8601), level, logger, message, extras."""

    def add_fields(self, log_record, record, message_dict):
        super().add_fields(log_record, record, message_dict)
        log_record["timestamp"] = datetime.fromtimestamp(record.created, UTC).isoformat(
            timespec="milliseconds"
        )
        log_record["level"] = record.levelname
        log_record["logger"] = record.name
        log_record.pop("exc_info", None)
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, exc, _ = record.exc_info
            log_record["exception"] = {
                "type": exc_type.__name__,
                "message": str(exc),
                "stack": self.formatException(record.exc_info),
            }


class ConsoleFormatter(logging.Formatter):
    """Readable lines for a terminal: time, level, logger, message, then key=value extras."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record):
        line = super().format(record)
        extras = {k: v for k, v in record.__dict__.items() if k not in RESERVED}
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in sorted(extras.items()))
        return line


def build_logging(*, fmt="json", level="info"):
    """Return the dictConfig for ``PORTAL_LOG_FORMAT`` and ``PORTAL_LOG_LEVEL``."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "portal.observability.ContextFilter"}},
        "formatters": {
            "json": {"()": "boot.logging.PortalJsonFormatter"},
            "console": {"()": "boot.logging.ConsoleFormatter"},
        },
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": fmt,
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            "django": {"level": level, "propagate": True},
            "django.request": {"level": level, "propagate": True},
            "django.server": {"level": level, "propagate": True},
            "django.db.backends": {"level": "INFO", "propagate": True},
            "botocore": {"level": "WARNING", "propagate": True},
            "boto3": {"level": "WARNING", "propagate": True},
            "urllib3": {"level": "WARNING", "propagate": True},
            "portal": {"level": level, "propagate": True},
        },
    }
