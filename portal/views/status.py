"""``/status`` for a person: the health report in words, recent runs, a trend, one action.

``StatusPage`` answers the JSON form (``?format=json``, or an Accept header preferring
JSON) exactly as ``portal.health.views.StatusView`` does, and renders the HTML page from
the same report plus ``portal.services.status``. ``requeue`` is the page's one action: a
POST with the session's CSRF token, for staff with the change permission on outbox events.
"""

import asyncio

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.urls import reverse

from portal.health.checks import readiness_checks, status_checks
from portal.health.views import StatusView, build_status, deny, wants_json
from portal.services.errors import ApiError, Forbidden, MethodNotAllowed, Unauthorized
from portal.services.status import actions, page, trend
from portal.views.responses import error_response


class StatusPage(StatusView):
    """The HTML page; the JSON form is the parent's, unchanged."""

    template_name = "portal/status.html"

    async def get(self, request, *args, **kwargs):
        if wants_json(request):
            return await super().get(request, *args, **kwargs)
        denied = await deny(request)
        if denied is not None:
            return denied
        ready = await self.run_checks(readiness_checks())
        extra = await asyncio.gather(*(check.get_result() for check in status_checks()))
        failed = any(result.error for result in ready)
        report = build_status(ready, extra, failed=failed)
        context = await sync_to_async(page_with_trend)(report, request.user)
        response = self.render_to_response(context, status=503 if failed else 200)
        response["Cache-Control"] = "no-store"
        response._has_been_logged = True
        return response


def page_with_trend(report, user):
    return {**page.page_context(report, user=user), "trend": trend.trend_context()}


def requeue(request):
    """POST ``event_id``: requeue that failed event, then back to the page (303)."""
    try:
        event_id = requeue_allowed(request)
        actions.requeue_event(event_id, user=request.user)
    except ApiError as exc:
        return error_response(exc)
    messages.success(request, f"Event {event_id} requeued: the next dispatch run sends it.")
    return HttpResponseRedirect(f"{reverse('status')}#outbox", status=303)


def requeue_allowed(request):
    """The event id to requeue, once the method, the caller and the id are checked."""
    if request.method != "POST":
        raise MethodNotAllowed(request.method, ["POST"])
    if not request.user.is_authenticated:
        if "HTTP_AUTHORIZATION" in request.META:
            raise Forbidden("a monitoring token reads /status; it cannot change anything")
        raise Unauthorized("log in as staff to requeue events", code="login_required")
    if not page.can_requeue(request.user):
        raise Forbidden(
            "requeueing needs a staff account with the change permission on outbox events",
            code="permission_denied",
        )
    return actions.parse_event_id(request.POST.get("event_id", ""))
