"""gunicorn settings: ``gunicorn -c gunicorn.conf.py`` (gunicorn also reads this file by
default when started from the project directory).

gunicorn's error and access logs go through the portal's logging configuration
(``boot.logging.build_logging``), so every line on stdout is one JSON object with the
same fields as the application's: access lines carry method, path, status, duration and
the response's request id; successful ``/health`` and ``/ready`` probes are not logged.

Environment: ``HOST`` (default 127.0.0.1; 0.0.0.0 in a container), ``PORT`` (8000),
``WEB_CONCURRENCY`` (workers, default 2 x CPUs + 1, at most 8), ``GUNICORN_THREADS`` (4),
``GUNICORN_TIMEOUT`` (60 s), ``PORTAL_LOG_FORMAT`` and ``PORTAL_LOG_LEVEL`` as for Django,
``PORTAL_DRAIN_SECONDS`` and ``PORTAL_BEHIND_PROXY`` (below, and docs/topology.md).

SIGTERM drains before it stops (``portal.health.drain``): ``/ready`` answers 503 for
``PORTAL_DRAIN_SECONDS`` (10) while everything else is served, so the load balancer takes
the instance out; then the listeners close and the workers finish the requests in flight
(``graceful_timeout``). A second SIGTERM skips the rest of the drain; SIGINT and SIGQUIT
stop at once as before. Send SIGTERM to the master only (systemd ``KillMode=mixed``):
a worker that receives it stops straight away.

Prometheus metrics (``/metrics``): the master gives its workers a private
``PROMETHEUS_MULTIPROC_DIR`` on tmpfs before it forks them (any value set outside is
replaced), merges the files of each worker that exits (``child_exit``) and removes the
directory when it exits; see ``portal.metrics.multiproc``.

glibc's allocator is tuned by ``MALLOC_ARENA_MAX`` and ``MALLOC_MMAP_THRESHOLD_`` in the
environment gunicorn starts with (docs/configuration.md, "gunicorn").
"""

import logging
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from boot import config as v  # noqa: E402 (after the path is set)
from boot.logging import FORMATS, LEVELS, build_logging  # noqa: E402
from portal.health import drain  # noqa: E402
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


# Read as the settings read them (the master must not load the settings themselves);
# the workers refuse to boot, naming the variable, if a value is invalid.
def _drain_seconds():
    """``PORTAL_DRAIN_SECONDS``, with the default of the configuration (0 in ``Test``)."""
    default = 0.0 if os.environ.get("DJANGO_CONFIGURATION") == "Test" else drain.DEFAULT_SECONDS
    value = v.FloatValue(default, min_value=0, max_value=drain.MAX_SECONDS)
    return v.from_environ(value, "PORTAL_DRAIN_SECONDS")


DRAIN_SECONDS = _drain_seconds()
BEHIND_PROXY = v.from_environ(v.BoolValue(False), "PORTAL_BEHIND_PROXY")

wsgi_app = "boot.wsgi:application"
bind = [f"{os.environ.get('HOST', '127.0.0.1')}:{_env_int('PORT', 8000)}"]

# Threads keep a worker answering its heartbeat while a slow client streams a part, so a
# long upload is not mistaken for a hung worker; requests mostly wait on I/O. gthread with
# threads of their own for /health (2), /ready (4) and tus bodies (8) (portal.health.lanes):
# probes and the JSON API never queue behind tus uploads streamed through nginx, nor probes
# behind API requests, whatever those wait for.
worker_class = "portal.health.lanes.ProbeLaneWorker"
workers = _env_int("WEB_CONCURRENCY", min(multiprocessing.cpu_count() * 2 + 1, 8))
threads = _env_int("GUNICORN_THREADS", 4)
timeout = _env_int("GUNICORN_TIMEOUT", 60)
# After the drain: how long workers may finish requests in flight. Behind nginx a part
# reaches gunicorn already buffered, so requests are short; finalize of a large file is
# the longest. Supervisors must wait longer than drain + this before SIGKILL.
graceful_timeout = 30
# Idle keep-alive connections close after 5 s; the proxy in front must close its idle
# upstream connections sooner (nginx: keepalive_timeout 4s in the upstream block).
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

# X-Forwarded-Proto: gunicorn itself sets wsgi.url_scheme from it when the peer is in
# forwarded_allow_ips (FORWARDED_ALLOW_IPS, default 127.0.0.1,::1, where nginx connects
# from). Not behind a proxy, nobody may set it: a client on the same host could
# otherwise claim HTTPS over plain HTTP (Django's SECURE_PROXY_SSL_HEADER follows the
# same setting).
if not BEHIND_PROXY:
    secure_scheme_headers = {}

loglevel = _log_level()
# Access logging is on because logconfig_dict is set. The message of an access line; the
# JSON fields come from boot.logging.GunicornAccessFilter.
access_log_format = "%(m)s %(U)s %(s)s %(M)sms"
logconfig_dict = build_logging(fmt=_log_format(), level=loglevel, behind_proxy=BEHIND_PROXY)
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


def when_ready(server):
    """The master is listening, no worker forked yet: SIGTERM drains first."""
    drain.ShutdownDrain.install(server, DRAIN_SECONDS)


def on_exit(server):
    drain.clear_marker()
    metrics_multiproc.remove_private_directory()


# prometheus-client multiprocess mode: set before any worker exists (workers inherit it and
# import prometheus_client after the fork, in multiprocess mode). A reload keeps it.
metrics_multiproc.use_private_directory()


def child_exit(server, worker):
    """A worker exited (recycled, crashed, killed): drop its live gauges, merge its counts."""
    try:
        metrics_multiproc.worker_exited(worker.pid, live_pids=server.WORKERS.keys())
    except OSError as exc:
        server.log.warning("metrics: cannot merge the files of worker %s: %s", worker.pid, exc)
