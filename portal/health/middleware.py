"""``ProbeMiddleware``: ``/health`` and ``/ready`` answered before the rest of the stack.

So a probe gets no SSL redirect, no ``ALLOWED_HOSTS`` check (``Host: 10.0.3.7``), no
session, CSRF, auth or ``ATOMIC_REQUESTS``: 200 or 503, never 301 or 400.
"""

import asyncio

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from portal.health.paths import HEALTH_PATH, READY_PATH
from portal.health.views import ReadyView, health


def with_length(response):
    if not response.streaming and not response.has_header("Content-Length"):
        response["Content-Length"] = str(len(response.content))
    return response


class ProbeMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.ready_view = ReadyView.as_view()
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        path = request.path_info
        if path == HEALTH_PATH:
            return with_length(health(request))
        if path == READY_PATH:
            # A WSGI worker thread has no event loop: run the async view on a fresh one in
            # this thread (async_to_sync would start a thread per probe to do the same).
            return with_length(asyncio.run(self.ready_view(request)))
        return self.get_response(request)

    async def __acall__(self, request):
        path = request.path_info
        if path == HEALTH_PATH:
            return with_length(health(request))
        if path == READY_PATH:
            return with_length(await self.ready_view(request))
        return await self.get_response(request)
