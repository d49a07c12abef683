"""Request middleware (request id and log context; filled in by the logging work)."""


class RequestIdMiddleware:
    """Gives every request an id for its log lines (placeholder until the logging issue)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)
