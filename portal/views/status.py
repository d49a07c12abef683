"""``/status`` for a person: the health report in words, recent runs, a trend, one action.

``StatusPage`` renders the HTML page from ``portal.health.views.StatusView``'s report (which
also answers the JSON form) plus ``portal.services.status``. ``requeue`` is the page's one action: a
POST with the session's CSRF token, for staff with the change permission on outbox events.
"""

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.urls import reverse

from portal.health.views import StatusView
from portal.responses import error_response
from portal.services.errors import ApiError, Forbidden, MethodNotAllowed, Unauthorized
from portal.services.status import page, trend


class StatusPage(StatusView):
    """The HTML page; the JSON form and the checks are the parent's."""

    template_name = "portal/status.html"

    async def render_page(self, request, report, *, failed):
        context = await sync_to_async(page_with_trend)(report, request.user)
        response = self.render_to_response(context, status=503 if failed else 200)
        response["Cache-Control"] = "no-store"
        return response


def page_with_trend(report, user):
    return {**page.page_context(report, user=user), "trend": trend.trend_context()}


def requeue(request):
    """POST ``event_id``: requeue that failed event, then back to the page (303)."""
    try:
        event_id = requeue_allowed(request)
        page.requeue_event(event_id, user=request.user)
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
    return page.parse_event_id(request.POST.get("event_id", ""))
