"""gunicorn settings: ``gunicorn -c gunicorn.conf.py`` (gunicorn also reads this file by
default when started from the project directory).

gunicorn's error and access logs go through the portal's logging configuration
(``boot.logging.build_logging``), so every line on stdout is one JSON object with the
same fields as the application's: access lines carry method, path, status, duration and
the response's request id; successful ``/health`` and ``/ready`` probes are not logged.

Environment: ``HOST`` (default 127.0.0.1; 0.0.0.0 in a container), ``PORT`` (8000),
``WEB_CONCURRENCY`` (workers, default 2 x CPUs + 1, at most 8), ``GUNICORN_THREADS`` (4),
``GUNICORN_TIMEOUT`` (60 s), ``PORTAL_LOG_FORMAT`` and ``PORTAL_LOG_LEVEL`` as for Django.

Prometheus metrics (``/metrics``): the master gives its workers a private
``PROMETHEUS_MULTIPROC_DIR`` on tmpfs before it forks them (any value set outside is
replaced), merges the files of each worker that exits (``child_exit``) and removes the
directory when it exits; see ``portal.metrics.multiproc``.
"""

import logging
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from boot.logging import FORMATS, LEVELS, build_logging  # noqa: E402 (after the path is set)
from portal.metrics import multiproc as metrics_multiproc  # noqa: E402


def _env_int(name, default):
    value = os.environ.get(name, "")
    return int(value) if value.strip().isdigit() else default


def _log_format():
    """The format Django will use too: ``PORTAL_LOG_FORMAT``, else the configuration's."""
    configured = os.environ.get("PORTAL_LOG_FORMAT", "").strip().lower()
    if configured in FORMATS:
        return configured
    return "console" if os.environ.get("DJANGO_CONFIGURATION") == "Dev" else "json"


def _log_level():
    configured = os.environ.get("PORTAL_LOG_LEVEL", "").strip().lower()
    if configured in LEVELS:
        return configured
    return "warning" if os.environ.get("DJANGO_CONFIGURATION") == "Test" else "info"


wsgi_app = "boot.wsgi:application"
bind = [f"{os.environ.get('HOST', '127.0.0.1')}:{_env_int('PORT', 8000)}"]

# Threads keep a worker answering its heartbeat while a slow client streams a part, so a
# long upload is not mistaken for a hung worker; requests mostly wait on I/O.
worker_class = "gthread"
workers = _env_int("WEB_CONCURRENCY", min(multiprocessing.cpu_count() * 2 + 1, 8))
threads = _env_int("GUNICORN_THREADS", 4)
timeout = _env_int("GUNICORN_TIMEOUT", 60)
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so a slow leak never takes a host down; jitter spreads it.
max_requests = 10000
max_requests_jitter = 1000
# Heartbeat files on tmpfs: a slow or full disk must not make the arbiter kill workers.
SHM = "/dev/shm"  # noqa: S108 (tmpfs on purpose; gunicorn only creates its own files there)
if os.path.isdir(SHM):
    worker_tmp_dir = SHM

# gunicorn's control socket (gunicornc) is one path per user: several servers on a host, or
# tests running side by side, would fight over it. Opt in with GUNICORN_CONTROL_SOCKET.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True

loglevel = _log_level()
# Access logging is on because logconfig_dict is set. The message of an access line; the
# JSON fields come from boot.logging.GunicornAccessFilter.
access_log_format = "%(m)s %(U)s %(s)s %(M)sms"
logconfig_dict = build_logging(fmt=_log_format(), level=loglevel)
# Python warnings in the master (before Django has configured logging) as log records too.
logging.captureWarnings(True)


def on_starting(server):
    """Check the settings once before any worker boots (``boot.preflight``, in a child
    process): bad settings stop the server with one log record naming every problem,
    instead of a traceback from each worker."""
    env = {**os.environ, "DJANGO_CONFIGURATION": os.environ.get("DJANGO_CONFIGURATION", "Prod")}
    check = subprocess.run(
        [sys.executable, "-m", "boot.preflight"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check.returncode != 0:
        problems = check.stdout.strip().splitlines() or check.stderr.strip().splitlines()[-1:]
        server.log.error("Configuration error: %s", "; ".join(problems))
        raise SystemExit(check.returncode)


# prometheus-client multiprocess mode: set before any worker exists (workers inherit it and
# import prometheus_client after the fork, in multiprocess mode). A reload keeps it.
metrics_multiproc.use_private_directory()


def child_exit(server, worker):
    """A worker exited (recycled, crashed, killed): drop its live gauges, merge its counts."""
    try:
        metrics_multiproc.worker_exited(worker.pid, live_pids=server.WORKERS.keys())
    except OSError as exc:
        server.log.warning("metrics: cannot merge the files of worker %s: %s", worker.pid, exc)


def on_exit(server):
    metrics_multiproc.remove_private_directory()
