"""A base for portal commands: settings checked, one run id on every record, failures as
log records, and the report of a job rendered the same way by every command.

``PortalCommand`` binds ``job`` (the command's name) and ``run_id`` around the whole run,
so every record of it carries them; the periodic jobs get the same from
``portal.services.jobs.job_run``, whose binding takes over inside its block. Before
``handle`` it runs the ``portal`` system checks (settings that contradict each other):
a job never runs on settings that ``manage.py check`` refuses. With JSON logs, a
``CommandError`` or a crash becomes one JSON error record (with the job, run id and the
structured exception) instead of Django's plain text on stderr, and the exit code is
kept: cron's log then holds nothing but JSON lines.
"""

import json
import logging
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal import exitcodes
from portal.checks import settings_problems
from portal.observability import bind, current_context, new_run_id

logger = logging.getLogger("portal.commands")


def json_logs():
    return getattr(settings, "PORTAL_LOG_FORMAT", "json") == "json"


class PortalCommand(BaseCommand):
    """Subclass instead of ``BaseCommand``; ``job_name`` defaults to the command's name.

    ``checks_settings = False`` for a command that must run on a broken set-up (one that
    shows the set-up). Django's own system checks are ``manage.py check``'s business.
    """

    job_name = None
    checks_settings = True
    requires_system_checks = []

    def execute(self, *args, **options):
        if "job" in current_context():
            return self._execute(args, options)
        job = self.job_name or type(self).__module__.rpartition(".")[2]
        with bind(job=job, run_id=new_run_id()):
            return self._execute(args, options)

    def _execute(self, args, options):
        if not (getattr(self, "_called_from_command_line", False) and json_logs()):
            return self._checked_execute(args, options)
        if options.get("traceback"):
            return self._checked_execute(args, options)
        try:
            return self._checked_execute(args, options)
        except CommandError as exc:
            logger.error("%s", exc, extra={"exit_code": exc.returncode})
            sys.exit(exc.returncode)
        except Exception:
            logger.exception(
                "%s failed", current_context().get("job"), extra={"exit_code": exitcodes.PARTIAL}
            )
            sys.exit(exitcodes.PARTIAL)

    def _checked_execute(self, args, options):
        if self.checks_settings and (problems := settings_problems()):
            raise CommandError(
                "Configuration error: " + "; ".join(problems), returncode=exitcodes.USAGE
            )
        return super().execute(*args, **options)

    def render(self, report, *, as_json, text=None):
        """Print a job's report (one JSON line, or ``text(summary)``), then exit with its code."""
        if as_json:
            self.stdout.write(json.dumps(report.summary, default=str))
        elif text is not None:
            self.stdout.write(text(report.summary))
        if report.exit_code != exitcodes.OK:
            raise CommandError(report.problem, returncode=report.exit_code)


def positive_int(text):
    """argparse type for ``--limit``/``--batch-size``: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def positive_float(text):
    """argparse type for ``--max-seconds``: a number above 0."""
    value = float(text)
    if not value > 0:
        raise ValueError(text)
    return value
