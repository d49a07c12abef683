"""The JSON error answer every view gives: ``{"error": {"code", "message", …}}``."""

from django.http import JsonResponse

from portal.services.errors import Unavailable


def error_response(exc):
    """An ``ApiError`` as a response, with its status and headers (``WWW-Authenticate``,
    ``Allow``, ``Retry-After``)."""
    response = JsonResponse(exc.as_dict(), status=exc.status)
    for name, value in exc.headers.items():
        response[name] = value
    return response


def database_unavailable():
    """503 ``database_unavailable``: nothing was half-done, the client retries."""
    return error_response(
        Unavailable(
            "the database is unavailable; nothing was lost, try again shortly",
            code="database_unavailable",
        )
    )
