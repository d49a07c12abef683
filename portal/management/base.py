"""The portal's commands: settings checked first, one run id on every record, a failure
as one JSON record when logs are JSON (cron's log then holds JSON lines only)."""

import argparse
import json
import logging
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import InterfaceError, OperationalError, ProgrammingError

from portal import exitcodes, limits
from portal.checks import settings_problems
from portal.observability import bind, current_context, new_run_id

logger = logging.getLogger("portal.commands")
DATABASE_ERRORS = (OperationalError, ProgrammingError, InterfaceError)


def database_problem(exc):
    """One line for a person at a terminal: what the database said, and what to check."""
    first_line = (str(exc).strip().splitlines() or [""])[0][:300]
    return (
        f"the database failed: {type(exc).__name__}: {first_line} (is it reachable, and migrated?)"
    )


class PortalCommand(BaseCommand):
    """``job_name`` defaults to the command's name. ``checks_settings = False`` lets a
    diagnostic run on the set-up the portal checks refuse (the set-up it shows)."""

    job_name = None
    checks_settings = True
    requires_system_checks = []  # Django's own checks are ``manage.py check``'s business

    def execute(self, *args, **options):
        if "job" in current_context():
            return self._execute(args, options)
        job = self.job_name or type(self).__module__.rpartition(".")[2]
        with bind(job=job, run_id=new_run_id()):
            return self._execute(args, options)

    def _execute(self, args, options):
        from_command_line = getattr(self, "_called_from_command_line", False)
        if not from_command_line or options.get("traceback"):
            return self._checked_execute(args, options)
        if settings.PORTAL_LOG_FORMAT != "json":
            try:
                return self._checked_execute(args, options)
            except DATABASE_ERRORS as exc:
                raise CommandError(database_problem(exc), returncode=exitcodes.PARTIAL) from None
        try:
            return self._checked_execute(args, options)
        except CommandError as exc:
            logger.error("%s", exc, extra={"exit_code": exc.returncode})
            sys.exit(exc.returncode)
        except Exception:
            job = current_context().get("job")
            logger.exception("%s failed", job, extra={"exit_code": exitcodes.PARTIAL})
            sys.exit(exitcodes.PARTIAL)

    def _checked_execute(self, args, options):
        if self.checks_settings and (problems := settings_problems()):
            raise CommandError(
                "Configuration error: " + "; ".join(problems), returncode=exitcodes.USAGE
            )
        return super().execute(*args, **options)


class JobCommand(PortalCommand):
    """A cron job: ``run(options)`` returns its report, printed as one JSON line
    (``--json``) or as ``text(summary)``; the report's exit code is the command's."""

    max_seconds_help = None

    def add_arguments(self, parser):
        self.add_job_arguments(parser)
        parser.add_argument(
            "--max-seconds",
            type=bounded_seconds(limits.MAX_JOB_SECONDS),
            help=self.max_seconds_help,
        )
        parser.add_argument("--json", action="store_true", help="print one JSON summary line")

    def add_job_arguments(self, parser):
        pass

    def handle(self, *args, **options):
        report = self.run(options)
        if options["json"]:
            self.stdout.write(json.dumps(report.summary, default=str))
        elif (text := self.text(report.summary)) is not None:
            self.stdout.write(text)
        if report.exit_code != exitcodes.OK:
            raise CommandError(report.problem, returncode=report.exit_code)

    def text(self, summary):
        return None


def bounded_int(upper, lower=1):
    """argparse type: a whole number from ``lower`` to ``upper``, in ASCII digits (Python
    reads "३" as 3, an operator would not)."""

    def parse(text):
        if (value := _ascii_number(text, int)) is None:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
        if not lower <= value <= upper:
            raise argparse.ArgumentTypeError(f"{text!r} is not between {lower} and {upper}")
        return value

    return parse


def bounded_seconds(upper):
    """argparse type: a finite number of seconds above 0 and at most ``upper``."""

    def parse(text):
        if (value := _ascii_number(text, float)) is None:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number")
        if not 0 < value <= upper:  # also refuses nan and inf
            raise argparse.ArgumentTypeError(f"{text!r} is not above 0 and at most {upper:g}")
        return value

    return parse


def _ascii_number(text, convert):
    try:
        return convert(text.strip()) if text.isascii() else None
    except ValueError:
        return None
