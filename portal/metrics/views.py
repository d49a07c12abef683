"""``GET /metrics``: the Prometheus exposition, for the metrics token, a monitoring token or staff.

A request with an ``Authorization`` header is judged by it alone, so a misconfigured
scraper never works by accident through a browser's session.
"""

import hashlib
import hmac

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponse
from prometheus_client.exposition import choose_encoder

from portal.auth import authenticate
from portal.metrics import collector
from portal.models import ApiToken
from portal.responses import error_response
from portal.services.errors import ApiError, Forbidden, MethodNotAllowed, Unauthorized, Unavailable

ALLOWED_METHODS = ("GET", "HEAD")
NEVER_CACHE = "max-age=0, no-cache, no-store, must-revalidate, private"


def metrics(request):
    try:
        if request.method not in ALLOWED_METHODS:
            raise MethodNotAllowed(request.method, ALLOWED_METHODS)
        check_access(request)
    except ApiError as exc:
        return error_response(exc)
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(collector.scrape_registry())
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = NEVER_CACHE
    response["Content-Length"] = str(len(body))
    return response


def check_access(request):
    """Return when ``request`` may read the metrics; raise the ``ApiError`` that says why not."""
    header = request.META.get("HTTP_AUTHORIZATION")
    if header is not None:
        if not token_matches(header):
            try:
                authenticate(request, ApiToken.Purpose.MONITORING)
            except DatabaseError as exc:
                raise Unavailable(
                    "cannot check the token: database unavailable", code="database_unavailable"
                ) from exc
        return
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        raise Unauthorized(
            "send 'Authorization: Bearer <token>' (PORTAL_METRICS_TOKEN or a monitoring "
            "token), or log in as staff",
            code="missing_token",
        )
    if not (user.is_active and user.is_staff):
        raise Forbidden("staff only")


def token_matches(header):
    """True when ``header`` is ``Bearer <PORTAL_METRICS_TOKEN>`` (and a token is set).

    Both sides are hashed first, so the comparison's time tells nothing about the token.
    """
    expected = settings.PORTAL_METRICS_TOKEN
    scheme, _, presented = header.partition(" ")
    presented = presented.strip()
    if not expected or scheme.lower() != "bearer" or not presented:
        return False
    return hmac.compare_digest(_digest(presented), _digest(expected))


def _digest(value):
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()
