"""Drain: ``/ready`` answers 503 while the instance keeps serving, so the balancer takes it
out before it stops (SIGTERM) or while it is maintained (``PORTAL_DRAIN_FILE``).

Workers learn of the shutdown from a marker file named after the master's pid (one
``stat()`` per ``/ready``). Imported by gunicorn's master: no settings at import.
"""

import os
import signal
import tempfile
from pathlib import Path

MARKER_ENV = "PORTAL_DRAIN_MARKER"
DRAIN_HEADER = "X-Portal-Drain"
# deploy/haproxy/haproxy.cfg takes an instance out within 3 s; slower balancers need more
# (docs/topology.md).
DEFAULT_SECONDS = 10.0
MAX_SECONDS = 3600.0
SHUTDOWN = "shutdown"
MAINTENANCE = "maintenance"


def drain_file():
    """The maintenance flag file: ``PORTAL_DRAIN_FILE``, else ``$PORTAL_DATA_DIR/drain``."""
    from django.conf import settings

    return Path(settings.PORTAL_DRAIN_FILE or Path(settings.PORTAL_DATA_DIR) / "drain")


def reason():
    """``shutdown``, ``maintenance``, or None when the instance does not drain."""
    marker = os.environ.get(MARKER_ENV)
    if marker and os.path.exists(marker):
        return SHUTDOWN
    if drain_file().exists():
        return MAINTENANCE
    return None


def start_maintenance():
    path = drain_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def stop_maintenance():
    """Returns the flag file's path and whether it existed."""
    path = drain_file()
    try:
        path.unlink()
    except FileNotFoundError:
        return path, False
    return path, True


def ready_response():
    """The ``/ready`` answer while draining, else None; ``X-Portal-Drain`` keeps it out of
    the access log (``boot.logging``): a drain is planned, not an error."""
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

    Replacing the arbiter's ``handle_term`` keeps gunicorn's path (signals queued and
    dispatched from the main loop), so the drain may write files and log. It ends with a
    one-shot ``setitimer`` SIGALRM (not a thread: the master forks; workers inherit no
    timer), dispatched to ``handle_alrm``, which calls the original ``handle_term``.
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
    """Remove this master's marker (gunicorn's ``on_exit``)."""
    marker = os.environ.get(MARKER_ENV)
    if marker:
        Path(marker).unlink(missing_ok=True)
