"""Pins for the ops area (issue #31), in-process: the access-log and client-error filters
(``boot.logging``), context and redaction (``portal.observability``), gunicorn's shutdown
drain (``portal.health.drain``) with a stand-in arbiter."""

import logging
import sys
from types import SimpleNamespace

import pytest

from boot.logging import ClientErrorFilter, ConsoleFormatter, GunicornAccessFilter, quiet_probe
from boot.settings import Base
from portal.health import drain
from tests import fixtures
from tests.log_helpers import Arbiter, access_record

timers = fixtures.timers  # a fixture of every module; named here for older imports


@pytest.fixture
def capture(json_capture):
    """``json_capture`` under the name these tests (and older imports of it) use."""
    return json_capture


# --- boot.logging: the filters on real records ------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "quiet"),
    [
        ("/ready", 200, True),
        ("/ready/", 302, True),
        ("/health", 399, True),
        ("/ready", 400, False),
        ("/health", 503, False),
        ("/api/v1/files", 200, False),
    ],
)
def test_only_a_successful_probe_is_quiet(path, status, quiet):
    assert quiet_probe(path, status) is quiet


@pytest.mark.parametrize(
    ("status", "level"),
    [(200, "INFO"), (399, "INFO"), (400, "WARNING"), (499, "WARNING"), (500, "ERROR")],
)
def test_access_lines_take_their_level_from_the_status(status, level):
    record = access_record(status)
    assert GunicornAccessFilter().filter(record)
    assert (record.levelname, record.status_code, record.path) == (level, status, "/api/v1/files")
    assert (record.http_method, record.duration_ms, record.response_bytes) == ("GET", 12, 345)
    assert (record.remote_addr, record.user_agent) == ("10.0.0.9", "curl/8")
    assert not hasattr(record, "request_id")


def test_a_draining_ready_is_not_logged_but_other_paths_are():
    drained = {"{x-portal-drain}o": "shutdown"}
    assert not GunicornAccessFilter().filter(access_record(503, "/ready", **drained))
    assert GunicornAccessFilter().filter(access_record(503, "/ready"))
    assert GunicornAccessFilter().filter(access_record(503, "/api/v1/files", **drained))


def test_forwarded_for_is_the_client_only_behind_a_proxy():
    forwarded = {"{x-forwarded-for}i": "203.0.113.7", "{x-request-id}o": "req-1"}
    direct = access_record(200, **forwarded)
    assert GunicornAccessFilter(behind_proxy=False).filter(direct)
    assert not hasattr(direct, "client_addr")
    assert direct.request_id == "req-1"
    proxied = access_record(200, **forwarded)
    assert GunicornAccessFilter(behind_proxy=True).filter(proxied)
    assert proxied.client_addr == "203.0.113.7"


def test_a_client_error_is_a_warning_without_its_stack():
    try:
        raise ValueError("bad host")
    except ValueError:
        record = logging.LogRecord(
            "django.security.DisallowedHost", logging.ERROR, __file__, 1, "bad", (), None
        )
        record.exc_info = sys.exc_info()
    assert ClientErrorFilter().filter(record)
    assert (record.levelno, record.levelname) == (logging.WARNING, "WARNING")
    assert record.exc_info is None and record.exc_text is None


def test_console_values_with_spaces_or_empty_are_quoted():
    record = logging.LogRecord("portal.x", logging.INFO, __file__, 1, "hello", (), None)
    record.event, record.job, record.note, record.empty = "cleanup.step", "a b", "plain", ""
    line = ConsoleFormatter().format(record)
    assert line.endswith(" hello event=cleanup.step job='a b' empty='' note=plain")


# --- portal.observability: context and redaction at their edges -----------------------------


def test_bound_context_ends_with_its_block(capture):
    from portal.observability import bind, current_context

    logger, records = capture()
    with bind(job="portal_cleanup"):
        with bind(run_id="r1"):
            assert current_context() == {"job": "portal_cleanup", "run_id": "r1"}
        logger.info("inner")
    logger.info("outer")
    inner, outer = records()
    assert (inner["job"], "run_id" in inner) == ("portal_cleanup", False)
    assert "job" not in outer and current_context() == {}


def test_secrets_from_eight_characters_are_redacted_longest_first(capture):
    logger, records = capture(secrets=["abcdefg", "abcdefgh", "abcdefgh-longer-secret"])
    logger.info("a abcdefg b abcdefgh c abcdefgh-longer-secret")
    [record] = records()
    assert record["message"] == "a abcdefg b [REDACTED] c [REDACTED]"


def test_sensitive_extra_names_are_redacted_whole(capture):
    logger, records = capture()
    logger.info(
        "x",
        extra={
            "db_password": "plain words",
            "client_secret": "plain words",
            "access_token": "plain words",
            "set_cookie": "plain words",
            "x_portal_signature": "plain words",
            "tokens_left": 3,
            "note": "plain words",
        },
    )
    [record] = records()
    for key in ("db_password", "client_secret", "access_token", "set_cookie"):
        assert record[key] == "[REDACTED]", key
    assert record["x_portal_signature"] == "[REDACTED]"
    assert (record["tokens_left"], record["note"]) == (3, "plain words")


def test_a_request_on_a_record_becomes_method_path_and_request_id(capture):
    from django.test import RequestFactory

    logger, records = capture()
    request = RequestFactory().post("/api/v1/uploads/sessions?x=1")
    request.request_id = "req-42"
    logger.warning("refused", extra={"request": request})
    [record] = records()
    assert (record["http_method"], record["path"]) == ("POST", "/api/v1/uploads/sessions")
    assert record["request_id"] == "req-42"
    assert "request" not in record


def test_the_database_password_of_the_settings_is_a_secret(monkeypatch):
    from django.conf import settings as django_settings

    from portal.observability import configured_secrets

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setitem(django_settings.DATABASES["default"], "PASSWORD", "db-settings-pass-77")
    assert "db-settings-pass-77" in configured_secrets()


# --- portal.health.drain: gunicorn's master, with a stand-in arbiter -------------------------


def test_sigterm_drains_then_a_second_stops_at_once(tmp_path, timers, monkeypatch):
    arbiter = Arbiter(tmp_path)
    shutdown = drain.ShutdownDrain.install(arbiter, 2.5)
    marker = tmp_path / f"portal-drain-{drain.os.getpid()}"
    assert drain.os.environ[drain.MARKER_ENV] == str(marker)
    assert not marker.exists() and drain.reason() is None
    arbiter.handle_term()  # SIGTERM
    assert marker.exists() and drain.reason() == "shutdown"
    assert (timers, arbiter.stopped) == ([2.5], 0)
    assert arbiter.lines[-1][1].startswith("draining: /ready answers 503 for 2.5s")
    arbiter.handle_term()  # SIGTERM again: stop now
    assert (timers, arbiter.stopped) == ([2.5, 0], 1)
    arbiter.handle_alrm()
    assert arbiter.stopped == 2 and shutdown.started
    drain.clear_marker()
    assert not marker.exists()


def test_a_drain_of_zero_seconds_stops_at_once(tmp_path, timers):
    arbiter = Arbiter(tmp_path)
    drain.ShutdownDrain.install(arbiter, 0)
    arbiter.handle_term()
    assert (timers, arbiter.stopped, arbiter.lines) == ([0], 1, [])
    assert drain.reason() is None


def test_a_marker_that_cannot_be_written_stops_at_once(tmp_path, timers):
    arbiter = Arbiter(tmp_path / "missing")
    drain.ShutdownDrain.install(arbiter, 10)
    arbiter.handle_term()
    assert arbiter.stopped == 1
    assert arbiter.lines[0][0] == "error"
    assert arbiter.lines[0][1].startswith("cannot drain, stopping now: marker ")


def test_stopping_maintenance_says_whether_it_was_on(settings, tmp_path):
    settings.PORTAL_DRAIN_FILE = str(tmp_path / "flag")
    assert drain.stop_maintenance() == (tmp_path / "flag", False)
    assert drain.start_maintenance() == tmp_path / "flag"
    assert drain.reason() == "maintenance"
    assert drain.stop_maintenance() == (tmp_path / "flag", True)
    assert drain.reason() is None


def test_the_default_drain_file_is_under_the_data_dir(settings, tmp_path):
    settings.PORTAL_DRAIN_FILE = ""
    settings.PORTAL_DATA_DIR = str(tmp_path)
    assert drain.drain_file() == tmp_path / "drain"


@pytest.mark.parametrize("behind_proxy", [True, False])
def test_portal_behind_proxy_reaches_the_access_filter_the_settings_build(behind_proxy):
    values = SimpleNamespace(
        PORTAL_LOG_FORMAT="json", PORTAL_LOG_LEVEL="info", PORTAL_BEHIND_PROXY=behind_proxy
    )
    options = dict(Base.LOGGING.fget(values)["filters"]["gunicorn_access"])
    assert options.pop("()") == "boot.logging.GunicornAccessFilter"
    record = access_record(200, **{"{x-forwarded-for}i": "203.0.113.7"})
    assert GunicornAccessFilter(**options).filter(record)
    assert getattr(record, "client_addr", None) == ("203.0.113.7" if behind_proxy else None)
