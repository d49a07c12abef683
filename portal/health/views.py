"""Probe views: django-health-check's, changed where they do not fit a balancer: 503 not
500, a body naming checks and states only (no exception text), a shared single-flight pool
and a short result cache; ``ProbeMiddleware`` answers ``/health`` and ``/ready`` first.
"""

import asyncio
import logging
import time

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.db import DatabaseError
from django.http import HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.urls import reverse
from health_check.exceptions import ServiceWarning
from health_check.views import HealthCheckView, MediaType
from prometheus_client import Gauge

from portal.auth import authenticate
from portal.health import drain, executor
from portal.health.checks import StorageFull, readiness_checks, status_checks
from portal.health.paths import HEALTH_PATH, PROBE_METHODS, READY_PATH
from portal.models import ApiToken
from portal.observability import log_event
from portal.responses import error_response
from portal.services.errors import ApiError, Forbidden, Unauthorized, Unavailable

logger = logging.getLogger("portal.health")
READY_CACHE_KEY = "ready"
HEALTH_BODY = b'{"status": "ok"}'
NEVER_CACHE = "max-age=0, no-cache, no-store, must-revalidate, private"
# The last /ready answer for /metrics (a scrape runs no check): the newest of any live
# worker; labelled, so none reads 0 before the first probe.
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


def health(request):
    """Liveness: the process answers. No database, no storage, no session."""
    if request.method not in PROBE_METHODS:
        return HttpResponseNotAllowed(PROBE_METHODS)
    response = HttpResponse(HEALTH_BODY, content_type="application/json")
    response["Cache-Control"] = NEVER_CACHE
    return response


def state_of(result):
    """``ok``, ``full``, ``warning`` or ``unavailable``: never the error text."""
    if result.error is None:
        return "ok"
    if isinstance(result.error, StorageFull):
        return "full"
    return "warning" if isinstance(result.error, ServiceWarning) else "unavailable"


def any_failed(results):
    return any(state_of(result) == "unavailable" for result in results)


def log_failures(results):
    for result in results:
        if result.error is None or isinstance(result.error, ServiceWarning):
            continue
        cause = result.error.__cause__ or result.error
        log_event(
            logger,
            "ready.check_failed",
            f"readiness check {result.check.name} failed: {result.error}",
            level=logging.WARNING,
            check=result.check.name,
            error_type=type(cause).__name__,
            error=str(cause)[:500],
            duration_ms=round(result.time_taken * 1000),
        )


def _checks_body(results):
    return {result.check.name: state_of(result) for result in results}


class ProbeCheckView(HealthCheckView):
    http_method_names = ["get", "head", "options"]

    async def run_checks(self, checks):
        pool = executor.executor  # shared: not the library's executor per request
        results = await asyncio.gather(*(check.get_result(pool) for check in checks))
        log_failures(results)
        return results

    @staticmethod
    def answer(body, *, failed):
        response = JsonResponse(body, status=503 if failed else 200)
        # We logged each failure as ready.check_failed; django.request need not add an ERROR.
        response._has_been_logged = True
        return response


class ReadyView(ProbeCheckView):
    """200 when the database and both storages pass, 503 when any fails or the instance
    drains (checked first, never cached)."""

    def get_checks(self):
        yield from readiness_checks()

    async def get(self, request, *args, **kwargs):
        draining = drain.ready_response()
        if draining is not None:
            return draining
        self.results = await self.readiness_results()
        failed = any_failed(self.results)
        body = {"status": "unavailable" if failed else "ok", "checks": _checks_body(self.results)}
        return self.answer(body, failed=failed)

    async def readiness_results(self):
        """Reuse the answer of the last ``PORTAL_READY_CACHE_SECONDS``, or run the checks."""
        cached = executor.results.get(READY_CACHE_KEY, settings.PORTAL_READY_CACHE_SECONDS)
        if cached is not None:
            return cached
        results = await self.run_checks(self.get_checks())
        executor.results.put(READY_CACHE_KEY, results)
        now = time.time()
        for result in results:
            name = result.check.name
            CHECK_UP.labels(check=name).set(0 if state_of(result) == "unavailable" else 1)
            CHECK_SECONDS.labels(check=name).set(float(result.time_taken))
            CHECKED_AT.labels(check=name).set(now)
        return results


class StatusView(ProbeCheckView):
    """For operators (staff or a monitoring token): fresh readiness plus the status checks,
    whose warnings never change the status code. The HTML page is ``portal.views.status``'s.
    """

    async def get(self, request, *args, **kwargs):
        denied = await deny(request)
        if denied is not None:
            return denied
        ready = await self.run_checks(readiness_checks())
        extra = await asyncio.gather(*(check.get_result() for check in status_checks()))
        failed = any_failed(ready)
        report = build_status(ready, extra, failed=failed)
        if wants_json(request):
            return self.answer(report, failed=failed)
        response = await self.render_page(request, report, failed=failed)
        response._has_been_logged = True
        return response

    async def render_page(self, request, report, *, failed):
        raise NotImplementedError


def build_status(ready, extra, *, failed):
    report = {
        "status": "unavailable" if failed else "ok",
        "checks": _checks_body(ready),
        "jobs": {},
        "outbox": {},
        "disk": {},
    }
    for result in extra:
        entry = {"state": state_of(result), **result.check.figures}
        if result.check.name.startswith("job:"):
            report["jobs"][result.check.job] = entry
        elif result.check.name.startswith("disk:"):
            report["disk"][result.check.alias] = entry
        else:
            report["outbox"] = entry
    return report


def wants_json(request):
    """``?format=json`` or an Accept header that prefers JSON over HTML."""
    if request.GET.get("format") == "json":
        return True
    try:
        media = list(MediaType.parse_header(request.headers.get("accept", "*/*")))
    except ValueError:
        return False
    for item in media:
        if item.mime_type in ("application/json", "application/*"):
            return True
        if item.mime_type in ("text/html", "application/xhtml+xml", "text/*", "*/*"):
            return False
    return False


async def deny(request):
    """None when a staff session or a monitoring token may see /status; else the answer."""
    try:
        user = await request.auser()
        if user.is_active and user.is_staff:
            return None
        if "HTTP_AUTHORIZATION" in request.META:
            await sync_to_async(authenticate)(request, ApiToken.Purpose.MONITORING)
            return None
    except ApiError as exc:
        return error_response(exc)
    except DatabaseError:
        return error_response(
            Unavailable(
                "cannot check credentials: database unavailable", code="database_unavailable"
            )
        )
    if user.is_authenticated:
        return error_response(Forbidden("staff only"))
    if not wants_json(request):
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    return error_response(
        Unauthorized(
            "log in as staff or send 'Authorization: Bearer <monitoring token>'",
            code="missing_token",
        )
    )


def with_length(response):
    if not response.streaming and not response.has_header("Content-Length"):
        response["Content-Length"] = str(len(response.content))
    return response


class ProbeMiddleware:
    """Answer ``/health`` and ``/ready`` before the rest of the stack: no SSL redirect, no
    ``ALLOWED_HOSTS`` check (``Host: 10.0.3.7``), no session, CSRF, auth or
    ``ATOMIC_REQUESTS``. A probe gets 200 or 503, never 301 or 400."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.ready_view = ReadyView.as_view()
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        path = request.path_info
        if path == HEALTH_PATH:
            return with_length(health(request))
        if path == READY_PATH:
            # A WSGI worker thread has no event loop: run the async view on a fresh one in
            # this thread (async_to_sync would start a thread per probe to do the same).
            return with_length(asyncio.run(self.ready_view(request)))
        return self.get_response(request)

    async def __acall__(self, request):
        path = request.path_info
        if path == HEALTH_PATH:
            return with_length(health(request))
        if path == READY_PATH:
            return with_length(await self.ready_view(request))
        return await self.get_response(request)
