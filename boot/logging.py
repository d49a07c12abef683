"""The ``LOGGING`` dictConfig: JSON lines (production) or console lines (development),
to stdout through one handler, for Django, gunicorn (``gunicorn.conf.py``) and every
command alike (docs/logging.md). Imported by gunicorn's master: no settings at import.
"""

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from pythonjsonlogger.json import JsonFormatter

from portal.health.paths import PROBE_PATHS
from portal.observability import CONTEXT_FIELDS, RECORD_ATTRS

FORMATS = ("json", "console")
LEVELS = ("debug", "info", "warning", "error", "critical")
# Loggers that others (Django, gunicorn, django-configurations' own stderr handler) would
# configure: here they only propagate to the one handler.
PROPAGATED = ("portal", "django", "django.request", "django.security", "gunicorn.error")
QUIET = ("py.warnings", "configurations.importer", "botocore", "boto3", "s3transfer", "urllib3")
HEAD_FIELDS = ("timestamp", "level", "logger", "message", "event", *CONTEXT_FIELDS)


def utc_timestamp(record):
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class PortalJsonFormatter(JsonFormatter):
    """One JSON object per line: timestamp (UTC), level, logger, message, event, the context
    fields, then any other extra; an exception as ``{type, message, stack}``."""

    def add_fields(self, log_data, record, message_dict):
        super().add_fields(log_data, record, message_dict)
        log_data["timestamp"] = utc_timestamp(record)
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        # ``RedactingFilter`` made ``exception`` from ``exc_info``; a bare ``exc_text`` is left.
        formatted = log_data.pop("exc_info", None)
        if formatted and "exception" not in log_data:
            log_data["exception"] = {"type": None, "message": None, "stack": formatted}

    def process_log_record(self, log_data):
        head = {key: log_data.pop(key) for key in HEAD_FIELDS if key in log_data}
        return {**head, **log_data}


class ConsoleFormatter(logging.Formatter):
    """Time, level, logger, message, then key=value extras (event and context first)."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record):
        line = super().format(record)
        head, _, tail = line.partition("\n")
        extras = {
            k: v for k, v in record.__dict__.items() if k not in RECORD_ATTRS and k != "exception"
        }
        ordered = [k for k in ("event", *CONTEXT_FIELDS) if k in extras]
        ordered += sorted(k for k in extras if k not in ordered)
        if ordered:
            head += " " + " ".join(f"{k}={_console_value(extras[k])}" for k in ordered)
        return f"{head}\n{tail}" if tail else head


def _console_value(value):
    text = str(value)
    return repr(text) if not text or any(c.isspace() for c in text) else text


def quiet_probe(path, status):
    """True for a successful probe: balancers probe every few seconds, and their successes
    would drown everything else."""
    return path in PROBE_PATHS and status < 400


def _level_for_status(status):
    if status >= 500:
        return logging.ERROR
    if status >= 400:
        return logging.WARNING
    return logging.INFO


class AccessFilter(logging.Filter):
    def __repr__(self):
        return f"<{type(self).__name__} drops 2xx/3xx of {','.join(sorted(PROBE_PATHS))}>"


class RunserverAccessFilter(AccessFilter):
    def filter(self, record):
        status = getattr(record, "status_code", None)
        args = record.args if isinstance(record.args, tuple) else ()
        if status is None or not args or not isinstance(args[0], str):
            return True
        parts = args[0].split()
        if len(parts) < 2:
            return True
        record.http_method, record.path = parts[0], parts[1].partition("?")[0]
        return not quiet_probe(record.path, status)


class GunicornAccessFilter(AccessFilter):
    """``gunicorn.access``: structured fields from gunicorn's atoms (docs/logging.md), the
    level by status, probes kept quiet (a draining ``/ready`` too: the drain is planned).

    ``X-Forwarded-For`` is client input, logged as ``client_addr`` only ``behind_proxy``.
    """

    def __init__(self, name="", behind_proxy=False):
        super().__init__(name)
        self.behind_proxy = behind_proxy

    def filter(self, record):
        atoms = record.args
        if not isinstance(atoms, Mapping):
            return True
        try:
            status = int(str(atoms["s"]))
        except (KeyError, ValueError):
            return True
        path = atoms["U"]
        drained = atoms["{x-portal-drain}o"] not in ("", "-")
        if quiet_probe(path, status) or (path in PROBE_PATHS and drained):
            return False
        if self.behind_proxy and atoms["{x-forwarded-for}i"] not in ("", "-"):
            record.client_addr = atoms["{x-forwarded-for}i"]
        record.http_method = atoms["m"]
        record.path = path
        record.status_code = status
        record.duration_ms = atoms["M"]
        record.response_bytes = atoms["B"]
        record.remote_addr = atoms["h"]
        if atoms["a"] != "-":
            record.user_agent = atoms["a"]
        request_id = atoms["{x-request-id}o"]
        if request_id and request_id != "-":
            record.request_id = request_id
        record.levelno = max(record.levelno, _level_for_status(status))
        record.levelname = logging.getLevelName(record.levelno)
        return True


class ClientErrorFilter(logging.Filter):
    """A client's bad request: at most WARNING and without a stack (the client's doing)."""

    def filter(self, record):
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
        return True

    def __repr__(self):
        return "<ClientErrorFilter at most WARNING>"


def build_logging(*, fmt="json", level="info", behind_proxy=False):
    """The dictConfig for ``PORTAL_LOG_FORMAT``, ``PORTAL_LOG_LEVEL`` and
    ``PORTAL_BEHIND_PROXY``: one stdout handler on the root logger, whose filters add the
    context, then redact secrets; every other logger propagates to it."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    level = level.upper()

    def logger(logger_level=level, **extra):
        return {"level": logger_level, "handlers": [], "propagate": True, **extra}

    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": "portal.observability.ContextFilter"},
            "redact": {"()": "portal.observability.RedactingFilter"},
            "runserver_access": {"()": "boot.logging.RunserverAccessFilter"},
            "gunicorn_access": {
                "()": "boot.logging.GunicornAccessFilter",
                "behind_proxy": behind_proxy,
            },
            "client_error": {"()": "boot.logging.ClientErrorFilter"},
        },
        "formatters": {
            "json": {"()": "boot.logging.PortalJsonFormatter"},
            "console": {"()": "boot.logging.ConsoleFormatter"},
        },
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": fmt,
                "filters": ["context", "redact"],
            }
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            **{name: logger() for name in PROPAGATED},
            # A bad Host is the client's doing: not an ERROR that anyone could cause at will.
            "django.security.DisallowedHost": logger(filters=["client_error"]),
            "django.server": logger(filters=["runserver_access"]),
            "django.db.backends": logger("INFO"),
            "gunicorn.access": logger(filters=["gunicorn_access"]),
            **{name: logger("WARNING") for name in QUIET},
            # /ready logs its own ready.check_failed; only the library's unexpected errors.
            "health_check": logger("ERROR"),
        },
    }
