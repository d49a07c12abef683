"""Pins for the upload client, seventh round (issue #31): ``portal_upload``'s options (their
defaults, bounds and messages), where its token comes from, and the commands' shared
one-line database error (``portal.management.base``)."""

import pytest
from django.core.management import load_command_class
from django.core.management.base import CommandError
from django.db import OperationalError

from tests.commands import run_from_command_line, usage_error
from tests.upload_command import upload

URL = ("--url", "http://p/")


def parsed(*argv):
    command = load_command_class("portal", "portal_upload")
    return vars(command.create_parser("manage.py", "portal_upload").parse_args(["f", *argv]))


def test_the_defaults_are_two_parts_four_retries_a_minute_and_an_hour():
    """What an operator gets without options: the documented defaults, each a number the
    client then uses (a changed default silently changes every cron upload)."""
    options = parsed(*URL)
    assert (options["parallel"], options["retries"]) == (2, 4)
    assert (options["timeout"], options["finalize_wait"]) == (60.0, 3600.0)
    assert (options["chunk_size"], options["idempotency_key"]) == (None, None)
    assert options["content_type"] == "application/octet-stream"


@pytest.mark.parametrize(
    "option, highest, lowest",
    [("--parallel", "64", "1"), ("--retries", "100", "0")],
)
def test_the_whole_number_options_take_exactly_their_range(option, highest, lowest):
    """``--parallel`` 1-64 and ``--retries`` 0-100: both ends accepted, one past either
    refused with a message naming the range."""
    name = option[2:]
    assert parsed(*URL, option, highest)[name] == int(highest)
    assert parsed(*URL, option, lowest)[name] == int(lowest)
    for value in (str(int(highest) + 1), str(int(lowest) - 1)):
        code, err = usage_error("portal_upload", "f", *URL, option, value)
        assert code == 2, (option, value)
        assert f"'{value}' is not between {lowest} and {highest}" in err


@pytest.mark.parametrize("option", ["--timeout", "--finalize-wait"])
def test_the_waiting_options_take_up_to_a_day_and_nothing_at_or_below_zero(option):
    """A request's deadline and the assembly wait are above 0 and at most a day (86400 s):
    ``inf`` or a typo of three more zeros is a usage error, not a client that never ends."""
    name = option[2:].replace("-", "_")
    assert parsed(*URL, option, "86400")[name] == 86400.0
    assert parsed(*URL, option, "0.001")[name] == 0.001
    for value in ("86400.5", "0", "-1", "inf"):
        code, err = usage_error("portal_upload", "f", *URL, option, value)
        assert code == 2, (option, value)
        assert f"'{value}' is not above 0 and at most 86400" in err


def test_a_url_refused_says_why():
    """The usage error quotes the URL and the rule it breaks, so the fix is obvious."""
    code, err = usage_error("portal_upload", "f", "--url", "http://p/a b")
    assert code == 2
    assert "'http://p/a b' must be ASCII without spaces (percent-encode other characters)" in err


def test_without_url_the_command_is_a_usage_error_naming_it():
    """There is no default portal: a forgotten ``--url`` is a usage error that names the
    option, not a traceback from a URL of None."""
    code, err = usage_error("portal_upload", "f")
    assert code == 2
    assert "the following arguments are required: --url" in err


def test_a_directory_is_no_file_to_upload(tmp_path, monkeypatch):
    """A directory given by mistake is a usage error naming it, not a 4 KiB upload of
    whatever its size says."""
    monkeypatch.setenv("PORTAL_TOKEN", "tok")
    result = upload(tmp_path, "http://127.0.0.1:9/")
    assert result.code == 2
    assert f"{tmp_path}: not a readable, non-empty file" in result.err


def test_without_portal_token_in_the_environment_the_token_is_a_usage_error(
    upload_file, monkeypatch
):
    """No ``PORTAL_TOKEN`` at all (not merely empty) is the same clear usage error, not a
    traceback."""
    monkeypatch.delenv("PORTAL_TOKEN")
    result = upload(upload_file, "http://127.0.0.1:9/")
    assert result.code == 2
    assert "no API token: set PORTAL_TOKEN or pass --token-file" in result.err


def test_a_token_file_that_is_not_text_is_a_usage_error(upload_file, tmp_path):
    """A binary file given as the token file (a key, a wrong path) is refused as unreadable
    with exit 2, not a traceback."""
    token = tmp_path / "token"
    token.write_bytes(b"\xff\xfe\x00binary\n")
    token.chmod(0o600)
    result = upload(upload_file, "http://127.0.0.1:9/", "--token-file", str(token))
    assert result.code == 2
    assert f"--token-file {token}: cannot read it (" in result.err


def test_an_empty_token_on_the_command_line_is_not_replaced_by_the_environments(
    upload_file, capsys
):
    """``--token ""`` (an unset shell variable) is refused: the explicit option is the one
    asked for, silently sending ``PORTAL_TOKEN`` instead would hide the mistake."""
    result = upload(upload_file, "http://127.0.0.1:9/", "--token", "")
    assert result.code == 2
    assert "no API token" in result.err


@pytest.mark.parametrize(
    "message, shown",
    [("", ""), ("\n  server closed the connection\nmore", "server closed the connection")],
)
def test_a_database_failure_line_takes_the_first_non_blank_line(settings, message, shown):
    """The one line shown is the database's first real line (leading blank lines skipped),
    and an error without any text still gives the line, not an IndexError."""
    settings.PORTAL_LOG_FORMAT = "console"
    with pytest.raises(CommandError) as error:
        run_from_command_line(OperationalError(message))
    assert str(error.value) == (
        f"the database failed: OperationalError: {shown} (is it reachable, and migrated?)"
    )
    assert error.value.returncode == 1
