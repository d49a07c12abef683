"""Drain: ``/ready`` answers 503 while the instance keeps serving, so the balancer takes it
out before it stops (SIGTERM, ``ShutdownDrain``) or while it is maintained
(``PORTAL_DRAIN_FILE``).

Workers learn of the shutdown through a marker file named after the master's pid (its
path exported in ``PORTAL_DRAIN_MARKER`` before the first fork): one ``stat()`` per
``/ready``, any worker class, never inherited by the next server. Imported by gunicorn's
master before Django is set up: nothing here touches settings at import.
"""

import os
import signal
import tempfile
from pathlib import Path

MARKER_ENV = "PORTAL_DRAIN_MARKER"
DRAIN_HEADER = "X-Portal-Drain"
# Long enough for deploy/haproxy/haproxy.cfg (first check after at most inter 2 s, two
# more at fastinter 0.5 s: out of rotation within 3 s) with room to spare; a balancer that
# checks less often needs more (docs/topology.md).
DEFAULT_SECONDS = 10.0
MAX_SECONDS = 3600.0
SHUTDOWN = "shutdown"
MAINTENANCE = "maintenance"


def drain_file():
    """The maintenance flag file: ``PORTAL_DRAIN_FILE``, else ``$PORTAL_DATA_DIR/drain``."""
    from django.conf import settings

    return Path(settings.PORTAL_DRAIN_FILE or Path(settings.PORTAL_DATA_DIR) / "drain")


def reason():
    """Why this instance drains (``shutdown`` or ``maintenance``), or None when it does not."""
    marker = os.environ.get(MARKER_ENV)
    if marker and os.path.exists(marker):
        return SHUTDOWN
    if drain_file().exists():
        return MAINTENANCE
    return None


def start_maintenance():
    """Create the maintenance flag file (and its directory); returns its path."""
    path = drain_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def stop_maintenance():
    """Remove the maintenance flag file; returns its path and whether it existed."""
    path = drain_file()
    try:
        path.unlink()
    except FileNotFoundError:
        return path, False
    return path, True


def ready_response():
    """The ``/ready`` answer while draining, else None.

    503 tells the balancer to take the instance out; ``X-Portal-Drain`` keeps the probe
    out of the access log (``boot.logging``): a drain is planned, not an error.
    """
    why = reason()
    if why is None:
        return None
    from django.http import JsonResponse

    response = JsonResponse({"status": "draining", "reason": why}, status=503)
    response[DRAIN_HEADER] = why
    response._has_been_logged = True  # not a failure: no django.request warning either
    return response


class ShutdownDrain:
    """SIGTERM in gunicorn's master: drain for ``seconds``, then gunicorn's graceful stop.

    gunicorn's master queues every signal and dispatches it from its main loop to the
    arbiter's ``handle_<name>`` method. Replacing ``handle_term`` on the arbiter instance
    keeps that path: the drain starts and ends in the main loop, never inside a signal
    handler, so it may write files and log. The end of the drain is a SIGALRM from a
    one-shot ``setitimer`` (not a thread: the master forks), queued by gunicorn's own
    handler and dispatched to ``handle_alrm``, which hands over to the original
    ``handle_term``. Timers are not inherited across ``fork()``, so workers never see it.
    """

    def __init__(self, arbiter, seconds, marker):
        self.arbiter = arbiter
        self.seconds = seconds
        self.marker = Path(marker)
        self.started = False
        self._stop = arbiter.handle_term

    @classmethod
    def install(cls, arbiter, seconds):
        """Take over ``arbiter``'s SIGTERM; export the marker path for the workers."""
        directory = arbiter.cfg.worker_tmp_dir or tempfile.gettempdir()
        drain = cls(arbiter, seconds, Path(directory) / f"portal-drain-{os.getpid()}")
        drain.marker.unlink(missing_ok=True)
        os.environ[MARKER_ENV] = str(drain.marker)
        arbiter.handle_term = drain.start
        arbiter.handle_alrm = drain.finish
        signal.signal(signal.SIGALRM, arbiter.signal)
        return drain

    def start(self):
        if self.started or self.seconds <= 0:
            self.finish()
            return
        self.started = True
        try:
            self.marker.touch()
        except OSError as exc:
            self.arbiter.log.error("cannot drain, stopping now: marker %s: %s", self.marker, exc)
            self.finish()
            return
        self.arbiter.log.info(
            "draining: /ready answers 503 for %ss, then graceful stop (SIGTERM again: stop now)",
            f"{self.seconds:g}",
        )
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def finish(self):
        signal.setitimer(signal.ITIMER_REAL, 0)
        if self.started:
            self.arbiter.log.info("drain over: closing the listeners, finishing requests")
        self._stop()  # gunicorn's own handle_term: raises StopIteration


def clear_marker():
    """Remove this master's marker (gunicorn's ``on_exit``); a new master uses a new one."""
    marker = os.environ.get(MARKER_ENV)
    if marker:
        Path(marker).unlink(missing_ok=True)
