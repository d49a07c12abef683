"""``python -m boot.preflight``: the settings check gunicorn runs once, before any worker.

gunicorn's workers load the application each on its own; a bad setting would stop every
worker with a traceback of its own. ``gunicorn.conf.py`` runs this first, in a separate
process (the master must not import Django: a reload with SIGHUP would then keep the old
code and settings), and refuses to start with one line per problem. Exit 0 when the
settings load and pass the ``portal`` system checks, 2 otherwise (``portal.exitcodes``).
"""

import os
import sys


def problems():
    """Every problem of the settings, one line each (empty when they are fine)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "boot.settings")
    os.environ.setdefault("DJANGO_CONFIGURATION", "Prod")
    from configurations import importer

    importer.install()
    import django

    from boot.config import SettingsError

    try:
        django.setup()
    except SettingsError as exc:
        return exc.problems
    from portal.checks import settings_problems

    return settings_problems()


def main():
    from portal import exitcodes

    found = problems()
    for line in found:
        print(line)
    return exitcodes.USAGE if found else exitcodes.OK


if __name__ == "__main__":
    sys.exit(main())
