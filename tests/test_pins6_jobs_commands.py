"""Pins for the commands' base, sixth round (issue #31): ``--traceback`` shows the real
error, and a command run inside a job's bound context logs under that job's run id."""

import pytest
from django.db import OperationalError

from portal.management.base import PortalCommand
from portal.models import ApiToken, UploadSession
from portal.observability import bind, current_context
from tests.commands import run_command
from tests.processes import run_manage


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


def test_portal_drain_start_where_the_flag_file_cannot_be_made_is_one_line_and_exit_1(
    settings, tmp_path
):
    """A ``PORTAL_DRAIN_FILE`` under a regular file: the operator gets the path and the
    system's reason on one line (exit 1), not a traceback, and nothing drains."""
    (tmp_path / "not-a-dir").write_text("")
    settings.PORTAL_DRAIN_FILE = str(tmp_path / "not-a-dir" / "drain")
    result = run_command("portal_drain", "start")
    assert result.code == 1 and result.out == ""
    assert f"CommandError: {tmp_path}/not-a-dir/drain: " in result.err
    assert "Traceback" not in result.err and "Errno" not in result.err


def test_portal_create_token_names_the_tokens_prefix_and_user_on_stderr(user):
    """The stored prefix is how an operator finds the token later (admin, logs): the
    confirmation must name it, the user, and the purpose, and never the token itself."""
    result = run_command("portal_create_token", "alice", "--name", "ci")
    raw = result.out.strip()
    token = ApiToken.objects.get()
    assert (result.code, token.name, token.user.username) == (0, "ci", "alice")
    assert result.err.strip() == (
        f"upload token {token.key_prefix}… created for 'alice'; it is shown only once"
    )
    assert raw not in result.err


def test_the_logging_tree_shows_the_api_views_logger(subprocess_env):
    """``portal.api`` (the upload views' logger) exists only once its module is imported,
    which a management command does not do by itself: the tree must import it to show it."""
    tree = run_manage(subprocess_env, "portal_logging_tree").stdout
    assert 'o<--"portal.api"' in tree
    assert 'o<--"portal.services.finalize"' in tree


def test_portal_cleanup_draws_its_progress_on_a_terminal_at_verbosity_1(
    portal_storage, user, terminal
):
    """An operator running it by hand sees each batch without ``-v 2``; cron (no
    terminal) at verbosity 1 gets none, so its mail stays the summary."""
    from tests.seed import make_session

    make_session(user, status=UploadSession.Status.ABORTED, total_parts=1)
    terminal()
    shown = run_command("portal_cleanup", "--only", "orphans", verbosity=1)
    assert shown.code == 0
    assert "cleanup orphans: batch 1 sessions=1 objects_deleted=1" in shown.err


def test_a_token_file_gives_its_first_line_and_wins_over_the_environment(
    tmp_path, monkeypatch, capsys
):
    """``--token-file`` names the token to use even with ``PORTAL_TOKEN`` set (an explicit
    option beats the ambient one), and only its first line is the token: a second line
    (a note, a second token) must not end up in the Authorization header."""
    from portal.management.token_source import api_token

    monkeypatch.setenv("PORTAL_TOKEN", "pt_from-the-environment")
    path = tmp_path / "token"
    path.write_text("pt_from-the-file\nissued for the nightly export\n")
    path.chmod(0o600)
    assert api_token(None, str(path)) == "pt_from-the-file"
    assert capsys.readouterr().err == ""
