"""WSGI entry point for gunicorn; inconsistent settings (the ``portal`` system checks)
refuse to start rather than fail the first request."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "boot.settings")
os.environ.setdefault("DJANGO_CONFIGURATION", "Prod")

from configurations.wsgi import get_wsgi_application
from django.core.exceptions import ImproperlyConfigured

application = get_wsgi_application()

from portal.checks import settings_problems  # noqa: E402 (needs the settings loaded above)

if _problems := settings_problems():
    raise ImproperlyConfigured("\n".join(_problems))
