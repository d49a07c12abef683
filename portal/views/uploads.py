"""The upload API (JSON): thin views that parse the request, call one service, render. Part
bodies go to the service as a reader of the request stream, never as ``request.body``."""

import functools
import json
import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from portal import auth, request_body
from portal.responses import database_unavailable, error_response
from portal.services import chunks, finalize, sessions
from portal.services.errors import ApiError, BadRequest, MethodNotAllowed, NotFound, TooLarge

logger = logging.getLogger("portal.api")
MAX_JSON_BYTES = 64 * 1024


def api_endpoint(view):
    """CSRF-exempt, authenticated, JSON errors; ``view`` maps methods to handlers."""

    @csrf_exempt
    @functools.wraps(view)
    def wrapper(request, **kwargs):
        def answer():
            user = auth.authenticate(request)
            return handler_for(request.method, view())(request, user, **kwargs)

        return answered(answer)

    return wrapper


def handler_for(method, handlers):
    if method not in handlers:
        raise MethodNotAllowed(method, sorted(handlers))
    return handlers[method]


def answered(answer):
    """``answer()``, or its ``ApiError`` as JSON. A database that cannot be reached is a 503
    (logged with its cause), like a storage outage: nothing was half-done, the client retries."""
    try:
        return answer()
    except ApiError as exc:
        return error_response(exc)
    except (OperationalError, InterfaceError) as exc:
        logger.warning("database unavailable: %s: %s", type(exc).__name__, exc)
        return database_unavailable()


def _json_body(request):
    """The request's JSON object, at most ``MAX_JSON_BYTES`` and of bounded depth."""
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > MAX_JSON_BYTES:
        raise TooLarge(
            f"a JSON body may have at most {MAX_JSON_BYTES} bytes", code="body_too_large"
        )
    try:
        return json.loads(request.read(MAX_JSON_BYTES + 1) or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body is not valid JSON", code="invalid_json") from None
    except RecursionError:
        raise BadRequest("the JSON body is nested too deeply", code="invalid_json") from None


def _create_session(request, user):
    session, created = sessions.create_session(user, _json_body(request))
    return JsonResponse(sessions.session_payload(session), status=201 if created else 200)


def _session_status(request, user, session_id):
    return JsonResponse(sessions.session_status(user, session_id))


def _abort(request, user, session_id):
    sessions.abort_session(user, session_id)
    return HttpResponse(status=204)


def _put_part(request, user, session_id, part_number):
    receipt, created = chunks.receive_part(
        user,
        session_id,
        part_number,
        request_body.body_reader(request),
        request.META.get("CONTENT_LENGTH"),
    )
    return JsonResponse(receipt, status=201 if created else 200)


def _finalize(request, user, session_id):
    """200 with the file, or 202 with the session while the assembly goes on (poll GET)."""
    file = finalize.finalize_session(user, session_id)
    if file is not None:
        return JsonResponse({"file": sessions.file_payload(file)})
    status = sessions.session_status(user, session_id)
    if status["status"] == "complete":  # done since the wait ended: no 202 that says so
        return JsonResponse({"file": status["file"]})
    response = JsonResponse(status, status=202)
    response["Location"] = request.path.removesuffix("/finalize")
    response["Retry-After"] = "2"
    return response


def _not_found(request, user, **kwargs):
    raise NotFound(f"no API endpoint at {request.path}", code="no_such_endpoint")


@api_endpoint
def session_list():
    return {"POST": _create_session}


@api_endpoint
def session_detail():
    return {"GET": _session_status, "HEAD": _session_status, "DELETE": _abort}


@api_endpoint
def session_part():
    return {"PUT": _put_part}


@api_endpoint
def session_finalize():
    return {"POST": _finalize}


@api_endpoint
def unknown_endpoint():
    return dict.fromkeys(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"), _not_found)
