"""Pins for the jobs area (issue #31): the commands' options, exit codes and messages, and
``portal_upload``'s token sources."""

import pytest

from tests.commands import from_command_line, run_command
from tests.seed import (
    Status,
    make_session,
    seed_owner,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(db):
    return seed_owner("pins-owner")


@pytest.mark.parametrize(
    "command, args, accepted",
    [
        ("portal_cleanup", ["--batch-size", "1"], True),
        ("portal_cleanup", ["--batch-size", "10000"], True),
        ("portal_cleanup", ["--batch-size", "10001"], False),
        ("portal_cleanup", ["--batch-size", "\u0969"], False),
        ("portal_cleanup", ["--max-seconds", "86400"], True),
        ("portal_cleanup", ["--max-seconds", "0"], False),
        ("portal_cleanup", ["--max-seconds", "soon"], False),
        ("portal_cleanup", ["--batch-size", "1.5"], False),
        ("portal_cleanup", ["--max-seconds", "nan"], False),
        ("portal_cleanup", ["--max-seconds", "\u0969"], False),
        ("portal_dispatch", ["--limit", "0"], False),
        ("portal_dispatch", ["--limit", "1"], True),
        ("portal_upload", ["f", "--url", "http://p/", "--retries", "0"], True),
        ("portal_upload", ["f", "--url", "http://p/", "--retries", "-1"], False),
        ("portal_upload", ["f", "--url", "http://p/a b"], False),
    ],
)
def test_option_bounds(command, args, accepted):
    from tests.commands import _from_command_line

    parser = _from_command_line(command).create_parser("manage.py", command)
    if accepted:
        parser.parse_args(args)
    else:
        with pytest.raises(SystemExit) as exited:
            parser.parse_args(args)
        assert exited.value.code == 2


def test_with_json_logs_a_usage_problem_still_exits_2(settings, caplog):
    settings.PORTAL_LOG_FORMAT = "json"
    settings.PORTAL_RUNNER_ENDPOINT = ""
    with pytest.raises(SystemExit) as exited:
        from_command_line("portal_dispatch")
    assert exited.value.code == 2
    [record] = [r for r in caplog.records if r.name == "portal.commands"]
    assert record.exit_code == 2
    assert "PORTAL_RUNNER_ENDPOINT is not set" in record.getMessage()


def test_a_settings_problem_refuses_a_job_with_exit_2(settings):
    settings.PORTAL_CHUNK_SIZE = settings.PORTAL_CHUNK_SIZE_MAX + 1
    result = run_command("portal_cleanup")
    assert result.code == 2
    assert "Configuration error: portal.E001" in result.err


def test_cleanup_shows_no_progress_at_verbosity_1(portal_storage, owner):
    make_session(owner, status=Status.ABORTED, total_parts=1)
    quiet = run_command("portal_cleanup", verbosity=1)
    assert quiet.code == 0 and quiet.err == ""
    make_session(owner, status=Status.ABORTED, total_parts=1)
    shown = run_command("portal_cleanup", "--only", "orphans", verbosity=2)
    assert "cleanup orphans: batch 1 sessions=1 objects_deleted=1" in shown.err


def test_drain_status_follows_the_flag_file(settings, tmp_path):
    settings.PORTAL_DRAIN_FILE = str(tmp_path / "drain")
    assert run_command("portal_drain", "status").out.startswith("serving:")
    assert run_command("portal_drain", "start").out.startswith("draining:")
    assert run_command("portal_drain", "status").out.strip() == f"draining: {tmp_path}/drain exists"
    assert "removed" in run_command("portal_drain", "stop").out
    assert "was not there" in run_command("portal_drain", "stop").out


def test_token_sources(tmp_path, monkeypatch, capsys):
    from django.core.management.base import CommandError

    from portal.management.token_source import api_token

    monkeypatch.setenv("PORTAL_TOKEN", " env-token \n")
    assert api_token(None, None) == "env-token"
    assert capsys.readouterr().err == ""
    assert api_token("given", None) == "given"
    assert "--token puts the token on the command line" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.write_text("\n")
    empty.chmod(0o600)
    with pytest.raises(CommandError, match="is empty") as error:
        api_token(None, str(empty))
    assert error.value.returncode == 2
    with pytest.raises(CommandError, match="cannot read it") as error:
        api_token(None, str(tmp_path / "missing"))
    assert error.value.returncode == 2
    monkeypatch.setenv("PORTAL_TOKEN", "  ")
    with pytest.raises(CommandError, match="no API token") as error:
        api_token(None, None)
    assert error.value.returncode == 2


def test_create_token_for_an_unknown_user_is_a_usage_error(db):
    result = run_command("portal_create_token", "nobody")
    assert result.code == 2
    assert "no user 'nobody'; pass --create-user to create it" in result.err
