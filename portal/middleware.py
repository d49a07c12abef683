"""Request id middleware: one id per request, on every log line of it and in the response.

It is the outermost middleware, so the id is bound before anything else runs and every
record logged while the request is handled (services, health checks, Django's own
``django.request`` and ``django.security`` lines) carries ``request_id``.
"""

import re
import uuid

from django.utils.log import log_response

from portal.observability import bind

REQUEST_ID_HEADER = "X-Request-ID"
MAX_REQUEST_ID_CHARS = 64
_SAFE_REQUEST_ID = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_REQUEST_ID_CHARS}}}")


def accepted_request_id(value):
    """The client's (or proxy's) id when it is short and safe to log, else a new one.

    Anything else (too long, control characters, quotes, spaces) is replaced rather than
    cleaned: a cleaned id would no longer match the caller's, and a replaced one is
    obviously ours.
    """
    if value and _SAFE_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Bind ``request_id`` for the whole request and echo it in ``X-Request-ID``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = accepted_request_id(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id
        with bind(request_id=request_id):
            response = self.get_response(request)
            if response.status_code >= 400:
                # Django logs 4xx/5xx responses after the middleware chain has returned,
                # outside this context; logging here (the same call, so it is not logged
                # twice) keeps the request id on that line.
                log_response(
                    "%s: %s",
                    response.reason_phrase,
                    request.path,
                    response=response,
                    request=request,
                )
        response[REQUEST_ID_HEADER] = request_id
        return response
