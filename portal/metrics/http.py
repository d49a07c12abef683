"""HTTP metrics: requests by view, method and status class, and their durations.

Labels come from bounded sets only: the URL pattern's name, never the path a client
chooses. A scrape carrying ``Authorization`` is answered here, before host validation and
the HTTPS redirect, as ``/ready`` is: scrapers call instances by address over plain HTTP.
"""

import time

from prometheus_client import Counter, Histogram

from portal.health.paths import HEALTH_PATH, READY_PATH

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
    """Count and time each request."""

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
