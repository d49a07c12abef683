"""Request id middleware (the outermost): one id per request, on every log line of it and
in the response."""

import re
import uuid

from django.utils.log import log_response

from portal.observability import bind

REQUEST_ID_HEADER = "X-Request-ID"
MAX_REQUEST_ID_CHARS = 64
_SAFE_REQUEST_ID = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_REQUEST_ID_CHARS}}}")


def accepted_request_id(value):
    """The client's (or proxy's) id when it is short and safe to log, else a new one (not a
    cleaned one, which would no longer match the caller's)."""
    if value and _SAFE_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = accepted_request_id(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id
        with bind(request_id=request_id):
            response = self.get_response(request)
            if response.status_code >= 400:
                # Django would log it outside this context; the same call is not repeated.
                log_response(
                    "%s: %s",
                    response.reason_phrase,
                    request.path,
                    response=response,
                    request=request,
                )
        response[REQUEST_ID_HEADER] = request_id
        return response
