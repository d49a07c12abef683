"""Bench-only WSGI app: the portal plus a bare view and a storage request counter.

    gunicorn -c gunicorn.conf.py bench.servers.probe_wsgi:application

- ``GET /bench/bare``: a plain Django view returning 200 through the whole middleware
  stack, the baseline ``bench/probes.py`` compares ``/health`` with.
- Every storage request the process makes appends one byte to ``BENCH_STORAGE_COUNTER``
  (``O_APPEND``, so both workers share it): a call of the local backend, or an HTTP
  request that botocore sends to S3. The file's size is the count.

Never used outside the benchmark; in a subfolder so that ``make bench`` (every
``bench/*.py``) does not run it as a script.
"""

import functools
import importlib
import os

from django.core.files.storage import FileSystemStorage
from django.http import HttpResponse
from django.urls import path

from boot.wsgi import application  # sets Django up: before the URLconf is imported

COUNTER = os.environ.get("BENCH_STORAGE_COUNTER", "")


def bare(request):
    return HttpResponse(b"ok", content_type="text/plain")


def _count():
    fd = os.open(COUNTER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, b".")
    finally:
        os.close(fd)


def _counted(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        _count()
        return method(*args, **kwargs)

    return wrapper


def _instrument():
    for name in ("_save", "_open", "exists", "delete"):
        setattr(FileSystemStorage, name, _counted(getattr(FileSystemStorage, name)))
    from botocore.endpoint import Endpoint

    Endpoint._send = _counted(Endpoint._send)


importlib.import_module("boot.urls").urlpatterns.append(path("bench/bare", bare))
if COUNTER:
    _instrument()

__all__ = ["application"]
