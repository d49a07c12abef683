"""What every log line carries: context (request id, job, run id, ...; a ContextVar copied
onto each record), the ``event`` vocabulary of docs/logging.md, and redaction of secrets
before any formatter sees a record.
"""

import contextlib
import contextvars
import datetime
import logging
import os
import re
import uuid
from urllib.parse import urlsplit

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
        "outbox.requeued",
        "storage.unavailable",
        "database.unavailable",
        "database.recovered",
        "storage.link_refused",
        # Written by deploy/cron/portal-job (not Python) when the host's job lock is held.
        "job.skipped",
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
REDACTED = "[REDACTED]"

_EMPTY: dict = {}
_context: contextvars.ContextVar[dict] = contextvars.ContextVar(
    "portal_log_context", default=_EMPTY
)

# Attributes every LogRecord has: never "extra" fields.
RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


@contextlib.contextmanager
def bind(**fields):
    """Add ``fields`` to every record logged inside the block (nested blocks merge)."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def current_context():
    return dict(_context.get())


def new_run_id():
    return uuid.uuid4().hex[:12]


def log_event(logger, event, message, *, level=logging.INFO, **fields):
    if event not in EVENTS:
        raise ValueError(f"unknown log event {event!r}; add it to portal.observability.EVENTS")
    logger.log(level, message, extra={"event": event, **fields})


class ContextFilter(logging.Filter):
    """Copy the bound context onto each record without overwriting explicit ``extra``; the
    request or socket Django attaches becomes method and path, never a serialised request."""

    def filter(self, record):
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        request = record.__dict__.pop("request", None)
        record.__dict__.pop("server_time", None)
        if request is not None and hasattr(request, "method"):
            record.http_method = request.method
            record.path = request.path
            if not hasattr(record, "request_id") and getattr(request, "request_id", None):
                record.request_id = request.request_id
        return True

    def __repr__(self):
        return f"<ContextFilter fields={','.join(CONTEXT_FIELDS)}>"


# Shorter secrets are not scrubbed by value: replacing every "abc" would garble the logs.
MIN_SECRET_CHARS = 8
SECRET_SETTINGS = (
    "SECRET_KEY",
    "PORTAL_RUNNER_AUTH_SECRET",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
)
TOKEN_PATTERNS = (
    # Authorization header values: "Bearer <token>", "Basic <base64>".
    (re.compile(r"(?i)(\bbearer\s+)[^\s\"',;]+"), r"\1" + REDACTED),
    (re.compile(r"(\bBasic\s+)[A-Za-z0-9+/]{8,}={0,2}"), r"\1" + REDACTED),
    # A header printed as a mapping entry or a line, scheme and all: 'HTTP_AUTHORIZATION': '...'.
    (
        re.compile(r"(?i)((?:http_)?authorization['\"]?\s*[:=]\s*['\"]?)[^'\"\r\n,}]+"),
        r"\1" + REDACTED,
    ),
    # Portal API tokens (portal.services.tokens): pt_ + URL-safe base64.
    (re.compile(r"(?<![A-Za-z0-9])pt_[A-Za-z0-9_-]{16,}"), "pt_" + REDACTED),
)
# One cheap search first: most strings (ids, paths, counts) contain none of these.
TOKEN_HINT = re.compile(r"(?i)bearer|basic|authorization|pt_")
SENSITIVE_KEY = re.compile(
    r"(?i)^(http_)?(proxy[-_])?authorization$|^(http_)?(set[-_])?cookie$|password|secret"
    r"|(^|[-_])(api[-_]?)?(access[-_]|refresh[-_])?token$|^x[-_]portal[-_]signature$"
)


def configured_secrets():
    """Secret values of this process: the environment, and Django settings when loaded."""
    values = {os.environ.get(name, "") for name in SECRET_SETTINGS}
    values.add(_url_password(os.environ.get("DATABASE_URL", "")))
    from django.conf import settings

    if settings.configured:
        values.update(str(getattr(settings, name, "") or "") for name in SECRET_SETTINGS)
        values.update(str(v) for v in getattr(settings, "SECRET_KEY_FALLBACKS", ()) or ())
        values.add(_url_password(str(getattr(settings, "DATABASE_URL", "") or "")))
        for database in getattr(settings, "DATABASES", {}).values():
            values.add(str(database.get("PASSWORD") or ""))
    return {value for value in values if value}


def _url_password(url):
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""


class RedactingFilter(logging.Filter):
    """Scrub known secret values and token-shaped strings from the message, its arguments,
    the exception and every extra field, rewriting the record in place: ``msg`` becomes the
    final message, ``exception`` a structured ``{type, message, stack}``. On the output
    handler, so it sees every record however it was logged."""

    def __init__(self, name="", secrets=None):
        super().__init__(name)
        secrets = configured_secrets() if secrets is None else secrets
        # Longest first, so a secret containing another is replaced whole.
        ordered = sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)
        self.count = len(ordered)
        self.secrets = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None

    def text(self, value):
        if len(value) < MIN_SECRET_CHARS:  # nothing redactable fits ("Bearer x" is 8)
            return value
        if self.secrets is not None:
            value = self.secrets.sub(REDACTED, value)
        if TOKEN_HINT.search(value):
            for pattern, replacement in TOKEN_PATTERNS:
                value = pattern.sub(replacement, value)
        return value

    def value(self, value, depth=0):
        """Scrub a structured value: strings, mappings (sensitive keys wholesale), lists."""
        if isinstance(value, str):
            return self.text(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, datetime.date | datetime.time):
            return value.isoformat()
        if depth > 5:
            return self.text(str(value))
        if isinstance(value, dict):
            return {
                k: REDACTED
                if isinstance(k, str) and SENSITIVE_KEY.search(k)
                else self.value(v, depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(v, depth + 1) for v in value]
        if isinstance(value, BaseException):
            return self.text(f"{type(value).__name__}: {value}")
        return self.text(str(value))

    def filter(self, record):
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the raw parts, still scrubbed
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = self.text(message), ()
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, exc, _ = record.exc_info
            stack = self.text(logging.Formatter().formatException(record.exc_info))
            record.exc_text = stack
            record.exception = {
                "type": exc_type.__name__,
                "message": self.text(str(exc)),
                "stack": stack,
            }
        elif record.exc_text:
            record.exc_text = self.text(record.exc_text)
        if record.stack_info:
            record.stack_info = self.text(record.stack_info)
        for key in [k for k in record.__dict__ if k not in RECORD_ATTRS]:
            if SENSITIVE_KEY.search(key):
                record.__dict__[key] = REDACTED
            else:
                record.__dict__[key] = self.value(record.__dict__[key])
        return True

    def __repr__(self):
        return f"<RedactingFilter secrets={self.count} tokens=bearer,basic,pt_>"
