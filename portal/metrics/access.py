"""Who may read ``/metrics``: the one place that decides.

Two credentials today: the bearer token in ``PORTAL_METRICS_TOKEN`` (what a Prometheus
server sends), or a logged-in active staff user (a person looking at it in a browser).
To admit another kind (say, API tokens created for monitoring), extend ``decide``.

A request that presents an ``Authorization`` header is judged by that header alone: a
wrong token is refused even from a browser that also has a staff session, so a
misconfigured scraper never works by accident.
"""

import enum
import hashlib
import hmac

from django.conf import settings


class Access(enum.Enum):
    ALLOWED = "allowed"
    MISSING = "missing_token"  # 401: no credentials
    INVALID = "invalid_token"  # 401: an Authorization header that is not the token
    FORBIDDEN = "forbidden"  # 403: logged in, but not staff


def decide(request):
    """``Access.ALLOWED`` or the reason the request may not read the metrics."""
    header = request.META.get("HTTP_AUTHORIZATION")
    if header is not None:
        return Access.ALLOWED if token_matches(header) else Access.INVALID
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return Access.MISSING
    if user.is_active and user.is_staff:
        return Access.ALLOWED
    return Access.FORBIDDEN


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


def _digest(value):
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()
