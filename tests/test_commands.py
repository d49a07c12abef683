"""``PortalCommand`` on the command line, in-process: with JSON logs a crash is one record
with its exit code; at a terminal (console logs) a database failure is one readable line."""

import pytest
from django.core.management.base import CommandError
from django.db import InterfaceError, OperationalError, ProgrammingError

from tests.commands import run_from_command_line


def test_a_database_failure_at_a_terminal_is_one_line_and_exit_1(settings):
    settings.PORTAL_LOG_FORMAT = "console"
    with pytest.raises(CommandError) as error:
        run_from_command_line(OperationalError("could not connect\nIs the server running?"))
    assert error.value.returncode == 1
    assert str(error.value) == (
        "the database failed: OperationalError: could not connect (is it reachable, and migrated?)"
    )


@pytest.mark.parametrize(
    "error",
    [
        ProgrammingError('relation "portal_jobrun" does not exist'),  # PostgreSQL unmigrated
        InterfaceError("connection already closed"),
    ],
)
def test_every_kind_of_database_failure_at_a_terminal_is_one_line(settings, error):
    settings.PORTAL_LOG_FORMAT = "console"
    with pytest.raises(CommandError) as refused:
        run_from_command_line(error)
    assert refused.value.returncode == 1
    kind = type(error).__name__
    assert str(refused.value) == (
        f"the database failed: {kind}: {error} (is it reachable, and migrated?)"
    )


@pytest.mark.parametrize("error", [OperationalError("could not connect"), ValueError("bug")])
def test_with_json_logs_a_crash_is_one_record_with_exit_1(settings, caplog, error):
    settings.PORTAL_LOG_FORMAT = "json"
    with pytest.raises(SystemExit) as exited:
        run_from_command_line(error)
    assert exited.value.code == 1
    [record] = [r for r in caplog.records if r.name == "portal.commands"]
    assert (record.getMessage(), record.exit_code) == ("failing failed", 1)
    assert record.exc_info[1] is error
