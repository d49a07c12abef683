"""``GET /metrics``: the Prometheus exposition, for the token or a staff session.

Served with the format the scraper asks for (``Accept``: OpenMetrics or the classic text
format, prometheus-client's ``choose_encoder``). ``MetricsMiddleware`` calls this view
directly for requests that carry an ``Authorization`` header (see ``portal.metrics.http``);
other requests reach it through the URL map with a session.
"""

from django.http import HttpResponse, HttpResponseNotAllowed, JsonResponse
from prometheus_client.exposition import choose_encoder

from portal.metrics import access, collector

ALLOWED_METHODS = ("GET", "HEAD")
NEVER_CACHE = "max-age=0, no-cache, no-store, must-revalidate, private"
REFUSALS = {
    access.Access.MISSING: (401, "send 'Authorization: Bearer <PORTAL_METRICS_TOKEN>'"),
    access.Access.INVALID: (401, "invalid metrics token"),
    access.Access.FORBIDDEN: (403, "staff only"),
}


def metrics(request):
    if request.method not in ALLOWED_METHODS:
        return HttpResponseNotAllowed(ALLOWED_METHODS)
    decision = access.decide(request)
    if decision is not access.Access.ALLOWED:
        return refusal(decision)
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(collector.scrape_registry())
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = NEVER_CACHE
    response["Content-Length"] = str(len(body))
    return response


def refusal(decision):
    status, message = REFUSALS[decision]
    response = JsonResponse({"error": {"code": decision.value, "message": message}}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = "Bearer"
    return response
