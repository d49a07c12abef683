"""The errors services raise for API clients; the views render them as JSON.

Each carries its HTTP ``status`` and a stable machine-readable ``code``; ``details`` are
extra fields merged into the error object (for example the missing part numbers).
"""


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


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class MethodNotAllowed(ApiError):
    status = 405
    code = "method_not_allowed"

    def __init__(self, method, allowed):
        super().__init__(f"{method} is not allowed here; use {', '.join(allowed)}")
        self.allowed = tuple(allowed)


class Conflict(ApiError):
    status = 409
    code = "conflict"


class Gone(ApiError):
    status = 410
    code = "gone"


class LengthRequired(ApiError):
    status = 411
    code = "length_required"


class TooLarge(ApiError):
    status = 413
    code = "too_large"
