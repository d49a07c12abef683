"""The errors services raise for API clients: HTTP ``status``, a stable ``code``, the
headers they need; ``details`` are merged into the JSON error object."""

AUTH_REALM = 'Bearer realm="portal"'


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message, *, code=None, details=None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or {}

    def as_dict(self):
        return {"error": {"code": self.code, "message": self.message, **self.details}}

    @property
    def headers(self):
        return {}


def api_error(name, status, code):
    """A subclass of ``ApiError`` that answers ``status`` with ``code``."""
    return type(name, (ApiError,), {"status": status, "code": code})


BadRequest = api_error("BadRequest", 400, "bad_request")
Forbidden = api_error("Forbidden", 403, "forbidden")
NotFound = api_error("NotFound", 404, "not_found")
Conflict = api_error("Conflict", 409, "conflict")
Gone = api_error("Gone", 410, "gone")
LengthRequired = api_error("LengthRequired", 411, "length_required")
TooLarge = api_error("TooLarge", 413, "too_large")
InsufficientStorage = api_error("InsufficientStorage", 507, "insufficient_storage")


class Unauthorized(ApiError):
    """RFC 6750: a missing token names the scheme; a bad one also says ``invalid_token``."""

    status = 401
    code = "unauthorized"

    @property
    def headers(self):
        if self.code == "invalid_token":
            return {"WWW-Authenticate": f'{AUTH_REALM}, error="invalid_token"'}
        return {"WWW-Authenticate": AUTH_REALM}


class MethodNotAllowed(ApiError):
    status = 405
    code = "method_not_allowed"

    def __init__(self, method, allowed):
        super().__init__(f"{method} is not allowed here; use {', '.join(allowed)}")
        self.allowed = tuple(allowed)

    @property
    def headers(self):
        return {"Allow": ", ".join(self.allowed)}


class Unavailable(ApiError):
    """A dependency failed (storage, the database): nothing was lost, ask again shortly."""

    status = 503
    code = "unavailable"
    retry_after_seconds = 5

    @property
    def headers(self):
        return {"Retry-After": str(self.retry_after_seconds)}


class QuotaExceeded(ApiError):
    """The owner reached a quota; ``details`` name the setting and its value."""

    status = 429
    code = "quota_exceeded"
