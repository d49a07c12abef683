"""Fail fast while the database is known to be down: one process-wide gate.

Otherwise every request would hold a server thread for the connect timeout. A failure
closes the gate for ``RETRY_SECONDS`` (503 at once), then one request at a time retries.
Wall-clock time, so time-machine moves it.
"""

import logging
import threading
import time

from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections

from portal.observability import log_event
from portal.responses import database_unavailable

logger = logging.getLogger("portal.dbgate")
RETRY_SECONDS = 2.0


class DatabaseGate:
    """``admit()``, then ``succeeded()`` or ``failed()`` for each request admitted."""

    def __init__(self, retry_seconds=RETRY_SECONDS):
        self.retry_seconds = retry_seconds
        self._lock = threading.Lock()
        self._failed_at = None  # None: the database answered last time
        self._trying = False

    def admit(self):
        """True when the database is up, or this request is the one that tries it again."""
        with self._lock:
            if self._failed_at is None:
                return True
            since = time.time() - self._failed_at
            if self._trying or 0 <= since < self.retry_seconds:
                return False
            self._trying = True
            return True

    def succeeded(self):
        with self._lock:
            was_down, self._failed_at, self._trying = self._failed_at is not None, None, False
        if was_down:
            log_event(logger, "database.recovered", "the database answers again; gate open")

    def failed(self, exc):
        with self._lock:
            was_up, self._failed_at, self._trying = self._failed_at is None, time.time(), False
        if was_up:
            log_event(
                logger,
                "database.unavailable",
                f"cannot connect to the database; requests get 503 for {self.retry_seconds:g} s "
                "between single retries until it answers",
                level=logging.WARNING,
                error_type=type(exc).__name__,
                error=str(exc)[:500],
            )


gate = DatabaseGate()


def connect(alias=DEFAULT_DB_ALIAS):
    """The kept connection if it still answers, else a new one."""
    connection = connections[alias]
    connection.close_if_health_check_failed()
    connection.ensure_connection()


class DatabaseGateMiddleware:
    """Connect before the view (as Django would at the first query), through the gate:
    ``503 database_unavailable`` when it is closed or the connection fails."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "OPTIONS":  # a CORS preflight: no credentials, nothing read
            return self.get_response(request)
        if not gate.admit():
            return database_unavailable()
        try:
            connect()
        except Exception as exc:
            gate.failed(exc)  # whatever it was, the retry it may have been is over
            if isinstance(exc, (OperationalError, InterfaceError)):
                return database_unavailable()
            raise
        gate.succeeded()
        return self.get_response(request)
