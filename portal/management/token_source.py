"""Where ``portal_upload`` takes its API token from: ``$PORTAL_TOKEN`` or ``--token-file``,
since a command line is readable by every local user (``ps``); ``--token`` warns."""

import os
import sys

from django.core.management.base import CommandError

from portal import exitcodes


def api_token(given, path):
    if given is not None:
        sys.stderr.write(
            "warning: --token puts the token on the command line, where every local "
            "user can read it (ps): set PORTAL_TOKEN or use --token-file instead\n"
        )
    elif path is not None:
        given = read_token_file(path)
    else:
        given = os.environ.get("PORTAL_TOKEN", "")
    if not given.strip():
        raise CommandError(
            "no API token: set PORTAL_TOKEN or pass --token-file", returncode=exitcodes.USAGE
        )
    return given.strip()


def read_token_file(path):
    """The first line of ``path``; a file others may read gets a warning."""
    try:
        with open(path, encoding="utf-8") as file:
            mode = os.fstat(file.fileno()).st_mode
            token = file.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(
            f"--token-file {path}: cannot read it ({exc})", returncode=exitcodes.USAGE
        ) from None
    if mode & 0o077:
        sys.stderr.write(
            f"warning: --token-file {path} can be read by other users (mode "
            f"{mode & 0o777:o}): chmod 600 it\n"
        )
    if not token.strip():
        raise CommandError(f"--token-file {path} is empty", returncode=exitcodes.USAGE)
    return token
