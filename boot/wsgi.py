"""WSGI entry point for gunicorn: ``gunicorn boot.wsgi`` (see ``gunicorn.conf.py``).

Runs the portal's system checks once at start-up, so a server with inconsistent settings
refuses to start instead of failing on the first request.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "boot.settings")
os.environ.setdefault("DJANGO_CONFIGURATION", "Prod")

from configurations.wsgi import get_wsgi_application
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

application = get_wsgi_application()

_errors = [e for e in run_checks(tags=["portal"]) if e.is_serious()]
if _errors:
    raise ImproperlyConfigured("\n".join(f"{e.id}: {e.msg}" for e in _errors))
