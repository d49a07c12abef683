"""Pins for the ops area (issue #31, second round): settings that only matter against a
PostgreSQL server that does not answer, and the development configuration's storage roots
(``boot.settings``)."""

import socket
import time

import pytest
from django.db import OperationalError
from django.db.utils import ConnectionHandler

from boot.settings import Base
from tests.settings_helpers import run_check


def test_a_postgresql_server_that_never_answers_fails_after_the_connect_timeout(
    django_db_blocker,
):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)  # the handshake completes in the backlog; nothing ever answers
    port = silent.getsockname()[1]
    config = Base()
    config.DATABASE_URL = f"postgres://portal:pw-portal-1@127.0.0.1:{port}/portal"
    config.DATABASE_CONNECT_TIMEOUT_SECONDS = 2
    database = config.DATABASES["default"]
    assert database["OPTIONS"]["connect_timeout"] == 2
    wrapper = ConnectionHandler({"default": database})["default"]
    started = time.monotonic()
    try:
        with (
            django_db_blocker.unblock(),
            pytest.raises(OperationalError, match=r"(?i)timeout|timed out"),
        ):
            wrapper.ensure_connection()
    finally:
        elapsed = time.monotonic() - started
        wrapper.close()
        silent.close()
    assert 1.5 < elapsed < 6, elapsed


def test_development_names_portal_data_dir_when_its_roots_cannot_be_made(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_check(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'db' / 'portal.sqlite3'}"},
        tmp_path=blocker,
    )
    assert result.returncode == 2, result.stderr
    assert (
        f"PORTAL_DATA_DIR={str(blocker)!r}: cannot create the directory "
        f"{str(blocker / 'temp')!r} (Not a directory)"
    ) in result.stderr


def test_a_metrics_token_of_32_characters_passes_31_do_not(settings):
    from portal import checks as syschecks

    strong = "Zq8-xW3_rT6yU1iO0pA9sD2fG5hJ4kL7zX_cV-bN8mQ1wE3rT5y"
    settings.SECRET_KEY = strong
    settings.PORTAL_RUNNER_ENDPOINT = ""
    settings.PORTAL_METRICS_TOKEN = strong[:32]
    assert syschecks.check_secrets() == []
    settings.PORTAL_METRICS_TOKEN = strong[:31]
    [error] = syschecks.check_secrets()
    assert error.msg == "PORTAL_METRICS_TOKEN has 31 characters, fewer than 32."
