#!/usr/bin/env python
"""Django's command-line utility, loading the django-configurations class.

A settings error (a bad environment variable) prints one clear line per problem and exits 2
instead of a traceback, so an operator sees at once which variable to fix.
"""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "boot.settings")
    os.environ.setdefault("DJANGO_CONFIGURATION", "Dev")
    from configurations.management import execute_from_command_line
    from django.conf import settings

    from boot.config import CONFIGURATIONS, SettingsError
    from portal import exitcodes

    configuration = os.environ["DJANGO_CONFIGURATION"]
    if configuration not in CONFIGURATIONS:
        sys.stderr.write(
            f"Configuration error:\n  - DJANGO_CONFIGURATION={configuration!r}: "
            f"must be one of {', '.join(CONFIGURATIONS)}\n"
        )
        sys.exit(exitcodes.USAGE)
    try:
        settings.INSTALLED_APPS  # noqa: B018 (load the settings now, so their errors are reported first)
    except SettingsError as exc:
        sys.stderr.write(f"Configuration error:\n{exc}\n")
        sys.exit(exitcodes.USAGE)
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
