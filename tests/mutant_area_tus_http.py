"""Area catalog ``tus``, its HTTP side (issue #31): ``portal/views/tus.py`` (headers, CORS,
creation-with-upload, method override), ``portal/urls.py``'s tus paths and
``portal/request_body.py``. The services are in ``tests/mutant_area_tus.py``."""

from tests.mutant_catalog import Mutant

_API = "tests/test_tus_api.py"
_EDGES = "tests/test_tus_edges.py"
_BODY = "tests/test_request_body.py"
_VIEW = "portal/views/tus.py"


def _m(name, path, old, new, *tests):
    return Mutant(f"tus: {name}", path, ((old, new),), tests or (_EDGES,))


MUTANTS = (
    # --- portal/views/tus.py
    _m(
        "Tus-Max-Size names the part size",
        _VIEW,
        'response["Tus-Max-Size"] = str(settings.PORTAL_MAX_FILE_SIZE)',
        'response["Tus-Max-Size"] = str(settings.PORTAL_CHUNK_SIZE)',
    ),
    _m(
        "Location is a path, not an absolute URL",
        _VIEW,
        'location = request.build_absolute_uri(reverse("tus-upload", args=[session.pk]))',
        'location = reverse("tus-upload", args=[session.pk])',
    ),
    _m(
        "a creation whose body is refused answers without its Location",
        _VIEW,
        '            response = error_response(exc)\n    response["Location"] = location',
        '            return error_response(exc)\n    response["Location"] = location',
    ),
    _m(
        "a creation whose body is refused is a 500",
        _VIEW,
        "        except ApiError as exc:\n            response = error_response(exc)",
        "        except KeyError as exc:\n            response = error_response(exc)",
    ),
    _m(
        "HEAD names an empty Upload-Metadata",
        _VIEW,
        "    if metadata:\n",
        "    if metadata is not None:\n",
        "tests/test_pins_tus.py",
    ),
    _m(
        "a PATCH checks Upload-Offset before its content type",
        _VIEW,
        "    _check_content_type(request)\n    offset = tus.integer_header(",
        "    offset = tus.integer_header(",
    ),
    _m(
        "X-HTTP-Method-Override is read in capitals only",
        _VIEW,
        'return request.headers.get("X-HTTP-Method-Override", request.method).upper()',
        'return request.headers.get("X-HTTP-Method-Override", request.method)',
    ),
    _m(
        "a preflight does not allow DELETE",
        _VIEW,
        '"POST, HEAD, PATCH, DELETE, OPTIONS"',
        '"POST, HEAD, PATCH, OPTIONS"',
    ),
    _m(
        "CORS does not expose Upload-Metadata",
        _VIEW,
        "Upload-Offset, Upload-Length, Upload-Expires, Upload-Metadata, Location",
        "Upload-Offset, Upload-Length, Upload-Expires, Location",
    ),
    _m(
        "CORS does not expose Tus-Resumable",
        _VIEW,
        '    "Tus-Resumable, Tus-Version, Tus-Extension,',
        '    "Tus-Version, Tus-Extension,',
    ),
    _m(
        "a preflight does not allow Upload-Defer-Length and Upload-Concat",
        _VIEW,
        "Upload-Defer-Length, Upload-Concat, ",
        "",
    ),
    _m(
        "the collection without its slash gets no tus headers",
        _VIEW,
        'if request.path == self.prefix or request.path.startswith(self.prefix + "/"):',
        'if request.path.startswith(self.prefix + "/"):',
    ),
    _m(
        "paths that merely begin like the tus endpoint get its headers",
        _VIEW,
        'if request.path == self.prefix or request.path.startswith(self.prefix + "/"):',
        "if request.path.startswith(self.prefix):",
    ),
    _m(
        "a 412 does not say which version is spoken",
        _VIEW,
        '            response["Tus-Version"] = tus.TUS_VERSION\n        return response',
        "            pass\n        return response",
        _API,
    ),
    _m(
        "a PATCH without Content-Length is 400, not an empty body",
        _VIEW,
        'tus.integer_header(request.META.get("CONTENT_LENGTH") or "0", "Content-Length")',
        'tus.integer_header(request.META.get("CONTENT_LENGTH", "0"), "Content-Length")',
    ),
    # --- portal/urls.py
    _m(
        "the tus collection without its slash is 404",
        "portal/urls.py",
        '    path("tus", tus.collection),\n',
        "",
    ),
    # --- portal/request_body.py
    _m(
        "a socket that fails mid-body leaves gunicorn reusing the connection",
        "portal/request_body.py",
        "            self._body.failed = True  # where the next request starts is unknown now\n",
        "",
        _BODY,
    ),
    _m(
        "the socket body reads past its Content-Length",
        "portal/request_body.py",
        "        want = min(len(buffer), self._reader.length)\n",
        "        want = len(buffer)\n",
        _BODY,
    ),
    _m(
        "bytes read ahead past the body are dropped",
        "portal/request_body.py",
        "        if got < len(pending):\n            self._unreader.unread(pending[got:])\n",
        "",
        _BODY,
    ),
)
