"""HTTP metrics (requests by view, method and status class; durations) and the last
``/ready`` answer as gauges.

Labels come from bounded sets only: the URL pattern's name, never the path a client
chooses. A scrape carrying ``Authorization`` is answered here, before host validation and
the HTTPS redirect, as ``/ready`` is: scrapers call instances by address over plain HTTP.
"""

import math
import threading
import time

from prometheus_client import Counter, Gauge, Histogram

from portal.health.executor import results
from portal.health.paths import HEALTH_PATH, READY_PATH
from portal.health.views import READY_CACHE_KEY, state_of

METRICS_PATH = "/metrics"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Up to two minutes: a part upload from a slow client takes that long.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
PATH_LABELS = {HEALTH_PATH: "health", READY_PATH: "ready", METRICS_PATH: "metrics"}

REQUESTS = Counter(
    "portal_http_requests",
    "HTTP requests answered, by view (URL name), method and status class.",
    ["view", "method", "status"],
)
DURATION = Histogram(
    "portal_http_request_duration_seconds",
    "Time from the request reaching Django to its response, by view and method.",
    ["view", "method"],
    buckets=DURATION_BUCKETS,
)
# The newest answer of any live worker; labelled, so none reads 0 before the first probe.
CHECK_UP = Gauge(
    "portal_ready_check_up",
    "1 when the readiness check passed in the last /ready answer (ok or full), else 0.",
    ["check"],
    multiprocess_mode="livemostrecent",
)
CHECK_SECONDS = Gauge(
    "portal_ready_check_duration_seconds",
    "How long the readiness check took in the last /ready answer.",
    ["check"],
    multiprocess_mode="livemostrecent",
)
CHECKED_AT = Gauge(
    "portal_ready_check_timestamp_seconds",
    "When this server last ran the readiness check for /ready (Unix time).",
    ["check"],
    multiprocess_mode="livemostrecent",
)
_published_lock = threading.Lock()
_published = [None]  # the cached results object last written to the gauges


def view_label(request):
    """The URL pattern's name, ``admin``, a probe's name, or ``unresolved`` for a request
    answered before URL resolution."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return PATH_LABELS.get(request.path_info, "unresolved")
    if "admin" in match.namespaces:
        return "admin"
    return match.view_name


def method_label(request):
    method = request.method or ""
    return method if method in KNOWN_METHODS else "other"


def status_label(response):
    if response is None:
        return "5xx"  # an exception escaped the stack; the server answers 500
    return f"{response.status_code // 100}xx"


class MetricsMiddleware:
    """Count and time each request; publish a new readiness answer after ``/ready``."""

    def __init__(self, get_response):
        from portal.metrics.views import metrics

        self.get_response = get_response
        self.metrics_view = metrics

    def __call__(self, request):
        started = time.perf_counter()
        response = None
        try:
            if request.path_info == METRICS_PATH and "HTTP_AUTHORIZATION" in request.META:
                response = self.metrics_view(request)
            else:
                response = self.get_response(request)
            return response
        finally:
            self.observe(request, response, time.perf_counter() - started)

    @staticmethod
    def observe(request, response, seconds):
        view, method = view_label(request), method_label(request)
        REQUESTS.labels(view=view, method=method, status=status_label(response)).inc()
        DURATION.labels(view=view, method=method).observe(seconds)
        if view == "ready":
            publish_readiness()


def publish_readiness():
    """Write the process's last readiness answer to the gauges if it is a new one.

    Taken from the ``/ready`` cache whatever its age: the metrics never run a check.
    """
    latest = results.get(READY_CACHE_KEY, math.inf)
    if latest is None:
        return False
    with _published_lock:
        if latest is _published[0]:
            return False
        _published[0] = latest
        now = time.time()
        for result in latest:
            name = result.check.name
            CHECK_UP.labels(check=name).set(0 if state_of(result) == "unavailable" else 1)
            CHECK_SECONDS.labels(check=name).set(float(result.time_taken))
            CHECKED_AT.labels(check=name).set(now)
    return True
