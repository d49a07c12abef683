"""``manage.py portal_logging_tree``: print the live logger tree (logging-tree): where a
line from ``portal.services.sessions``, ``django.request`` or ``gunicorn.access`` ends up,
and through which filters and formatter."""

import importlib
import pkgutil

from logging_tree.format import build_description

from portal.management.base import PortalCommand


def import_logging_modules():
    """Import the modules whose loggers would not exist yet, so that they show."""
    for package_name in ("portal.services", "portal.views"):
        package = importlib.import_module(package_name)
        for module in pkgutil.iter_modules(package.__path__, f"{package_name}."):
            importlib.import_module(module.name)


class Command(PortalCommand):
    help = "Print the logger tree of the loaded logging configuration (logging-tree)."
    checks_settings = False  # a diagnostic: it must run on the set-up that is broken

    def handle(self, *args, **options):
        import_logging_modules()
        self.stdout.write(build_description(), ending="")
