"""WSGI entry point for gunicorn: ``gunicorn boot.wsgi`` (see ``gunicorn.conf.py``).

Runs the portal's system checks once at start-up, so a server with inconsistent settings
refuses to start instead of failing on the first request.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "boot.settings")
os.environ.setdefault("DJANGO_CONFIGURATION", "Prod")

from configurations.wsgi import get_wsgi_application
from django.core.exceptions import ImproperlyConfigured

application = get_wsgi_application()

from portal.checks import settings_problems  # noqa: E402 (needs the settings loaded above)

if _problems := settings_problems():
    raise ImproperlyConfigured("\n".join(_problems))
