"""Pins for the commands' base, sixth round (issue #31): ``--traceback`` shows the real
error, and a command run inside a job's bound context logs under that job's run id."""

import pytest
from django.db import OperationalError

from portal.management.base import PortalCommand
from portal.observability import bind, current_context


class Failing(PortalCommand):
    job_name = "failing"

    def __init__(self, error, *, from_command_line=True):
        super().__init__()
        self.error = error
        self.seen = None
        self._called_from_command_line = from_command_line

    def handle(self, *args, **options):
        self.seen = current_context()
        if self.error is not None:
            raise self.error


def execute(command, *argv):
    options = vars(command.create_parser("manage.py", "failing").parse_args(list(argv)))
    return command.execute(**options)


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_traceback_lets_the_database_error_itself_through(settings, log_format):
    """``--traceback`` is how an operator sees where a failure came from: neither the
    one-line summary (console) nor the JSON record and exit (json) may swallow it."""
    settings.PORTAL_LOG_FORMAT = log_format
    error = OperationalError("could not connect\nIs the server running?")
    with pytest.raises(OperationalError) as raised:
        execute(Failing(error), "--traceback")
    assert raised.value is error


def test_a_command_inside_a_bound_job_keeps_that_jobs_name_and_run_id(db):
    """A command called (``call_command``) inside a running job's bound context logs under
    that job and run id: one run's lines must not split over two run ids."""
    command = Failing(None, from_command_line=False)
    with bind(job="portal_cleanup", run_id="0123456789ab"):
        execute(command)
    assert command.seen == {"job": "portal_cleanup", "run_id": "0123456789ab"}


def test_a_command_outside_any_job_binds_its_own_name_and_a_fresh_run_id(db):
    """Without a bound job, the command names itself (``job_name``) under a new run id."""
    first, second = Failing(None, from_command_line=False), Failing(None, from_command_line=False)
    execute(first)
    execute(second)
    assert first.seen["job"] == second.seen["job"] == "failing"
    assert len(first.seen["run_id"]) == 12 and first.seen["run_id"] != second.seen["run_id"]
    assert current_context() == {}
