"""Management commands run in the test's process: what ``manage.py`` would print and exit
with, without paying for a Python start-up and a Django set-up per case.

Each command keeps one test through a real process (``tests.processes.run_manage``) for
what only a process shows: its exit code, and the logging configuration's JSON lines.
"""

import contextlib
import io
from dataclasses import dataclass

import pytest
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError

from portal.management.base import PortalCommand


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_command(name, *args, **options):
    """``call_command``, its output captured and a ``CommandError`` read as its exit code
    and message (as ``manage.py`` prints it on stderr)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(name, *args, stdout=out, stderr=err, **options)
    except CommandError as exc:
        err.write(f"CommandError: {exc}\n")
        return Result(exc.returncode, out.getvalue(), err.getvalue())
    return Result(0, out.getvalue(), err.getvalue())


def usage_error(name, *argv):
    """``(exit code, stderr)`` of argparse refusing ``manage.py name argv``."""
    command = _from_command_line(name)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exited:
        command.create_parser("manage.py", name).parse_args(argv)
    return exited.value.code, err.getvalue()


def from_command_line(name, *argv):
    """Run ``manage.py name argv`` as the command line would, minus the process: a
    ``PortalCommand`` then turns a failure into a log record and ``SystemExit``."""
    command = _from_command_line(name)
    options = vars(command.create_parser("manage.py", name).parse_args(argv))
    return command.execute(*options.pop("args", ()), **options)


def _from_command_line(name):
    command = load_command_class("portal", name)
    command._called_from_command_line = True
    return command


class Failing(PortalCommand):
    job_name = "failing"

    def __init__(self, error):
        super().__init__()
        self.error = error
        self._called_from_command_line = True

    def handle(self, *args, **options):
        raise self.error


def run_from_command_line(error):
    command = Failing(error)
    options = vars(command.create_parser("manage.py", "failing").parse_args([]))
    return command.execute(**options)
