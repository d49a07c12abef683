"""The tus 1.0 endpoint, ``/api/v1/tus/`` (docs/api.md, "tus 1.0"): parse the tus headers,
call one service, answer with tus headers. ``OPTIONS`` needs no token: a browser's CORS
preflight carries none."""

import functools

from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import http_date
from django.views.decorators.csrf import csrf_exempt

from portal import auth, request_body
from portal.responses import error_response
from portal.services import tus, tus_patch
from portal.services.errors import ApiError, BadRequest, LengthRequired
from portal.views.uploads import answered, handler_for

TUS_HEADERS = (
    "Tus-Resumable, Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm, "
    "Upload-Offset, Upload-Length, Upload-Expires, Upload-Metadata, Location, X-Request-ID"
)
REQUEST_HEADERS = (
    "Authorization, Content-Type, Tus-Resumable, Upload-Length, Upload-Metadata, "
    "Upload-Offset, Upload-Checksum, Upload-Defer-Length, Upload-Concat, "
    "X-HTTP-Method-Override, X-Requested-With, X-Request-ID"
)
PREFLIGHT_MAX_AGE = "86400"


def tus_endpoint(view):
    """CSRF-exempt; ``Tus-Resumable`` (412) and the bearer token checked except for
    ``OPTIONS``; JSON errors (the headers every answer carries: ``TusHeadersMiddleware``)."""

    @csrf_exempt
    @functools.wraps(view)
    def wrapper(request, **kwargs):
        def answer():
            method = _method(request)
            handler = handler_for(method, view())
            if method == "OPTIONS":
                return handler(request)
            tus.check_version(request.headers.get("Tus-Resumable"))
            return handler(request, auth.authenticate(request), **kwargs)

        response = answered(answer)
        if response.status_code == tus.PreconditionFailed.status:
            response["Tus-Version"] = tus.TUS_VERSION
        return response

    return wrapper


class TusHeadersMiddleware:
    """``Tus-Resumable``, ``Cache-Control`` on HEAD and CORS on every answer under the tus
    endpoint, whichever layer gave it: the view, the database gate's 503 (which answers
    before any view), the JSON 404 of a path below it. A browser client can read none of
    them without the CORS headers."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.prefix = None

    def __call__(self, request):
        response = self.get_response(request)
        if self.prefix is None:
            self.prefix = reverse("tus-uploads").rstrip("/")
        if request.path == self.prefix or request.path.startswith(self.prefix + "/"):
            if _method(request) == "HEAD":
                response["Cache-Control"] = "no-store"
            response["Tus-Resumable"] = tus.TUS_VERSION
            _cors(request, response)
        return response


def _method(request):
    """``X-HTTP-Method-Override``: for clients behind proxies that pass only GET and POST."""
    return request.headers.get("X-HTTP-Method-Override", request.method).upper()


def _cors(request, response):
    """CORS for the allowed origins only: a preflight learns the methods and headers, every
    answer exposes the tus headers. Others get no CORS header (the browser refuses)."""
    patch_vary_headers(response, ["Origin"])
    origin = request.headers.get("Origin", "")
    if not origin or origin.lower() not in settings.PORTAL_CORS_ALLOWED_ORIGINS:
        return response
    response["Access-Control-Allow-Origin"] = origin
    response["Access-Control-Expose-Headers"] = TUS_HEADERS
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        response["Access-Control-Allow-Methods"] = "POST, HEAD, PATCH, DELETE, OPTIONS"
        response["Access-Control-Allow-Headers"] = REQUEST_HEADERS
        response["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    return response


def _options(request):
    """What this server speaks: version, extensions, the largest file, checksums."""
    response = HttpResponse(status=204)
    response["Tus-Version"] = tus.TUS_VERSION
    response["Tus-Extension"] = ",".join(tus.EXTENSIONS)
    response["Tus-Max-Size"] = str(settings.PORTAL_MAX_FILE_SIZE)
    response["Tus-Checksum-Algorithm"] = ",".join(tus.CHECKSUM_ALGORITHMS)
    return response


def _create(request, user):
    """POST: the new upload's ``Location`` (201); a body is its first PATCH
    (creation-with-upload), whose error, if any, is answered with the ``Location``."""
    length = _body_length(request)
    if length:
        _check_content_type(request)
    session = tus.create_upload(
        user,
        length=request.headers.get("Upload-Length"),
        metadata=request.headers.get("Upload-Metadata"),
        defer_length=request.headers.get("Upload-Defer-Length"),
        concat=request.headers.get("Upload-Concat"),
    )
    location = request.build_absolute_uri(reverse("tus-upload", args=[session.pk]))
    response = HttpResponse(status=201)
    response["Upload-Expires"] = http_date(session.expires_at.timestamp())
    if length:
        try:
            response = _patch_response(request, user, session.pk, offset=0)
            response.status_code = 201
        except ApiError as exc:
            response = error_response(exc)
    response["Location"] = location
    return response


def _head(request, user, upload_id):
    """HEAD: the offset to resume from, the length, the metadata as sent, the expiry."""
    offset, length, expires_at, metadata = tus.upload_info(user, upload_id)
    response = HttpResponse(status=200)
    response["Upload-Offset"] = str(offset)
    response["Upload-Length"] = str(length)
    if metadata:
        response["Upload-Metadata"] = metadata
    if expires_at is not None:
        response["Upload-Expires"] = http_date(expires_at.timestamp())
    return response


def _patch(request, user, upload_id):
    """PATCH, in tusd's order: content type (415), Upload-Offset and Content-Length (400),
    then the service's checklist: owner (404), state (410), one at a time (423), offset
    (409), length (413), room (507), checksum (460), the file's sha256 (460)."""
    _check_content_type(request)
    offset = tus.integer_header(request.headers.get("Upload-Offset"), "Upload-Offset")
    return _patch_response(request, user, upload_id, offset=offset)


def _check_content_type(request):
    if request.content_type != tus.PATCH_CONTENT_TYPE:
        raise tus.UnsupportedMediaType(f"send Content-Type: {tus.PATCH_CONTENT_TYPE}")


def _patch_response(request, user, upload_id, *, offset):
    result = tus_patch.receive_patch(
        user,
        upload_id,
        offset=offset,
        length=_body_length(request),
        stream=request_body.body_reader(request),
        checksum=request.headers.get("Upload-Checksum"),
    )
    if result.broken:
        response = error_response(
            BadRequest(
                f"the body broke off ({result.broken}); what arrived is kept: resume at "
                "Upload-Offset",
                code="incomplete_body",
            )
        )
    else:
        response = HttpResponse(status=204)
    response["Upload-Offset"] = str(result.offset)
    if result.expires_at is not None:
        response["Upload-Expires"] = http_date(result.expires_at.timestamp())
    return response


def _body_length(request):
    """``Content-Length``; none is an empty body, unless it is chunked (411)."""
    if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        raise LengthRequired(
            "send Content-Length (chunked bodies are not accepted)", code="length_required"
        )
    return tus.integer_header(request.META.get("CONTENT_LENGTH") or "0", "Content-Length")


def _terminate(request, user, upload_id):
    tus.terminate(user, upload_id)
    return HttpResponse(status=204)


@tus_endpoint
def collection():
    return {"POST": _create, "OPTIONS": _options}


@tus_endpoint
def upload():
    return {"HEAD": _head, "PATCH": _patch, "DELETE": _terminate, "OPTIONS": _options}
