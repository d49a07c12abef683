"""``python -m boot.preflight``: the settings check gunicorn runs once, before any worker.

Run in a child process (a master that imported Django would keep old code and settings
over a SIGHUP reload), so every worker need not fail with a traceback of its own. Exit 0
when the settings load and pass the ``portal`` checks, 2 otherwise, one line per problem.
"""

import os
import sys


def problems():
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
