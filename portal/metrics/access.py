"""Who may read ``/metrics``: the one place that decides.

``PORTAL_METRICS_TOKEN``, a monitoring API token, or an active staff session; an upload
token is refused. A request with an ``Authorization`` header is judged by it alone, so a
misconfigured scraper never works by accident through a browser's session.
"""

import hashlib
import hmac

from django.conf import settings
from django.db import DatabaseError

from portal.auth import authenticate
from portal.models import ApiToken
from portal.services.errors import Forbidden, Unauthorized, Unavailable


def check(request):
    """Return when ``request`` may read the metrics; raise the ``ApiError`` that says why not."""
    header = request.META.get("HTTP_AUTHORIZATION")
    if header is not None:
        if not token_matches(header):
            _monitoring_token(request)
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

    Both sides are hashed before ``hmac.compare_digest``, so the time taken depends on
    neither the token's length nor how many of its first characters a guess got right.
    """
    expected = settings.PORTAL_METRICS_TOKEN
    scheme, _, presented = header.partition(" ")
    presented = presented.strip()
    if not expected or scheme.lower() != "bearer" or not presented:
        return False
    return hmac.compare_digest(_digest(presented), _digest(expected))


def _monitoring_token(request):
    try:
        authenticate(request, ApiToken.Purpose.MONITORING)
    except DatabaseError as exc:
        raise Unavailable(
            "cannot check the token: database unavailable", code="database_unavailable"
        ) from exc


def _digest(value):
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()
