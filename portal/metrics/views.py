"""``GET /metrics``: the Prometheus exposition, for a metrics or monitoring token or staff.

Served with the format the scraper asks for (``Accept``: OpenMetrics or the classic text
format, prometheus-client's ``choose_encoder``). ``MetricsMiddleware`` calls this view
directly for requests that carry an ``Authorization`` header (see ``portal.metrics.http``);
other requests reach it through the URL map with a session.
"""

from django.http import HttpResponse
from prometheus_client.exposition import choose_encoder

from portal.metrics import access, collector
from portal.responses import error_response
from portal.services.errors import ApiError, MethodNotAllowed

ALLOWED_METHODS = ("GET", "HEAD")
NEVER_CACHE = "max-age=0, no-cache, no-store, must-revalidate, private"


def metrics(request):
    try:
        if request.method not in ALLOWED_METHODS:
            raise MethodNotAllowed(request.method, ALLOWED_METHODS)
        access.check(request)
    except ApiError as exc:
        return error_response(exc)
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(collector.scrape_registry())
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = NEVER_CACHE
    response["Content-Length"] = str(len(body))
    return response
