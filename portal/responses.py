"""The JSON error answer every view gives: ``{"error": {"code", "message", …}}``."""

from django.http import JsonResponse


def error_response(exc):
    """An ``ApiError`` as a response, with its status and headers (``WWW-Authenticate``,
    ``Allow``, ``Retry-After``)."""
    response = JsonResponse(exc.as_dict(), status=exc.status)
    for name, value in exc.headers.items():
        response[name] = value
    return response
