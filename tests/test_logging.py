"""Structured logging in-process: the JSON and console formats, context, redaction, request ids.

A real logger drives a real handler with the portal's filters and formatters into a
stream. The same rules through real processes: ``test_logging_processes.py``.
"""

import logging
import re

import pytest
from pythonjsonlogger.json import JsonFormatter

from boot.logging import PortalJsonFormatter, build_logging
from portal.middleware import MAX_REQUEST_ID_CHARS, accepted_request_id
from portal.observability import (
    REDACTED,
    bind,
    configured_secrets,
    log_event,
)
from portal.services.jobs import job_run
from tests import fixtures
from tests.processes import (
    AWS_SECRET,
    HEX32,
    RUNNER_SECRET,
    SECRET_KEY,
    assert_record_contract,
    json_lines,
    new_token,
)

capture = fixtures.capture  # a fixture of every module; named here for older imports

# --- unit tests: a real logger, a real handler, the portal's filters and formatters -------


def test_json_record_carries_the_contract_fields_and_context(capture):
    logger, stream = capture()
    with bind(request_id="req-1", job="portal_cleanup"), bind(run_id="r1"):
        log_event(logger, "part.received", "part stored", session_id="s-1", part_number=3)
    (record,) = json_lines(stream.getvalue())
    assert_record_contract(record)
    assert list(record)[:5] == ["timestamp", "level", "logger", "message", "event"]
    assert record["event"] == "part.received"
    assert record["message"] == "part stored"
    assert record["level"] == "INFO"
    assert record["logger"].startswith("portal.test_logging.")
    assert {k: record[k] for k in ("request_id", "job", "run_id", "session_id")} == {
        "request_id": "req-1",
        "job": "portal_cleanup",
        "run_id": "r1",
        "session_id": "s-1",
    }
    assert record["part_number"] == 3


def test_explicit_extra_wins_over_bound_context(capture):
    logger, stream = capture()
    with bind(session_id="bound"):
        logger.info("x", extra={"session_id": "explicit"})
        logger.info("y")
    first, second = json_lines(stream.getvalue())
    assert first["session_id"] == "explicit"
    assert second["session_id"] == "bound"


def test_unknown_event_is_refused(capture):
    logger, _ = capture()
    with pytest.raises(ValueError, match="unknown log event"):
        log_event(logger, "session.exploded", "no such event")


def test_exception_is_structured_in_the_same_line(capture):
    logger, stream = capture()
    try:
        raise KeyError("missing\npart")
    except KeyError:
        logger.exception("assembly failed\nsecond line of the message")
    text = stream.getvalue()
    assert text.count("\n") == 1, "one record, one line"
    (record,) = json_lines(text)
    assert record["message"] == "assembly failed\nsecond line of the message"
    assert record["level"] == "ERROR"
    exception = record["exception"]
    assert exception["type"] == "KeyError"
    assert "missing" in exception["message"]
    assert exception["stack"].startswith("Traceback (most recent call last):")
    assert "test_exception_is_structured_in_the_same_line" in exception["stack"]
    assert "exc_info" not in record


def test_secrets_and_tokens_are_scrubbed_from_every_part_of_a_record(capture):
    token = new_token()
    logger, stream = capture(secrets=[SECRET_KEY, RUNNER_SECRET, AWS_SECRET])
    try:
        raise RuntimeError(f"signing with {RUNNER_SECRET} failed for {token}")
    except RuntimeError:
        logger.exception(
            "key %s, header %s",
            SECRET_KEY,
            {"HTTP_AUTHORIZATION": f"Bearer {token}"},
            extra={
                "detail": f"aws {AWS_SECRET}",
                "headers": {"Authorization": "Basic dXNlcjpwYXNz", "Accept": "*/*"},
                "nested": [{"password": "hunter2hunter2"}, f"Authorization: Bearer {token}"],
                "api_token": token,
                "error": ValueError(SECRET_KEY),
            },
        )
    logger.warning("request with %s", f"Bearer {token}", stack_info=True)
    text = stream.getvalue()
    for secret in (SECRET_KEY, RUNNER_SECRET, AWS_SECRET, token, "dXNlcjpwYXNz", "hunter2"):
        assert secret not in text
    first, second = json_lines(text)
    assert first["message"].startswith(f"key {REDACTED}, header ")
    assert first["exception"]["message"] == (f"signing with {REDACTED} failed for pt_{REDACTED}")
    assert REDACTED in first["exception"]["stack"]
    assert first["detail"] == f"aws {REDACTED}"
    assert first["headers"] == {"Authorization": REDACTED, "Accept": "*/*"}
    assert first["nested"] == [{"password": REDACTED}, f"Authorization: {REDACTED}"]
    assert first["api_token"] == REDACTED
    assert second["message"] == f"request with Bearer {REDACTED}"


def test_short_or_empty_secrets_do_not_garble_the_logs(capture):
    logger, stream = capture(secrets=["", "abc", "testing"])
    logger.info("an abc of the logs and the word testing")
    (record,) = json_lines(stream.getvalue())
    assert record["message"] == "an abc of the logs and the word testing"


def test_configured_secrets_come_from_settings_and_environment(settings, monkeypatch):
    settings.SECRET_KEY = SECRET_KEY
    settings.SECRET_KEY_FALLBACKS = ["old-" + SECRET_KEY]
    settings.PORTAL_RUNNER_AUTH_SECRET = RUNNER_SECRET
    settings.AWS_SECRET_ACCESS_KEY = AWS_SECRET
    settings.PORTAL_LOG_LEVEL = "info"
    monkeypatch.setenv("DATABASE_URL", "postgres://portal:db-pass-123456@db:5432/portal")
    monkeypatch.setenv("PORTAL_RUNNER_AUTH_SECRET", "from-env-" + RUNNER_SECRET)
    found = configured_secrets()
    assert {
        SECRET_KEY,
        "old-" + SECRET_KEY,
        RUNNER_SECRET,
        AWS_SECRET,
        "db-pass-123456",
        "from-env-" + RUNNER_SECRET,
    } <= found
    assert "" not in found


def test_console_format_is_one_readable_line_with_event_and_context(capture):
    logger, stream = capture(fmt="console", secrets=[SECRET_KEY])
    with bind(request_id="req-9"):
        log_event(logger, "session.created", f"created {SECRET_KEY}", session_id="s 1")
    line = stream.getvalue()
    assert line.count("\n") == 1
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d INFO    portal\.test_logging\.\w+: created \[REDACTED\] "
        r"event=session\.created request_id=req-9 session_id='s 1'\n",
        line,
    ), line


def test_build_logging_wires_python_json_logger_through_dictconfig():
    config = build_logging(fmt="json", level="debug")
    assert config["disable_existing_loggers"] is False
    formatter_path = config["formatters"]["json"]["()"]
    assert formatter_path == "boot.logging.PortalJsonFormatter"
    assert issubclass(PortalJsonFormatter, JsonFormatter)
    handler = config["handlers"]["stdout"]
    assert handler["stream"] == "ext://sys.stdout"
    assert handler["formatter"] == "json"
    assert handler["filters"] == ["context", "redact"]
    assert config["root"] == {"handlers": ["stdout"], "level": "DEBUG"}
    for name in ("portal", "django", "django.request", "django.server", "django.security"):
        assert config["loggers"][name]["propagate"] is True
        assert config["loggers"][name]["handlers"] == []
    for name in ("gunicorn.error", "gunicorn.access"):
        assert config["loggers"][name]["propagate"] is True
    assert build_logging(fmt="console")["handlers"]["stdout"]["formatter"] == "console"
    with pytest.raises(ValueError, match="log format"):
        build_logging(fmt="xml")


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("abc-123_DEF.9", True),
        ("a" * MAX_REQUEST_ID_CHARS, True),
        ("a" * (MAX_REQUEST_ID_CHARS + 1), False),
        ("x" * 10_240, False),
        ("abc\ndef", False),
        ("abc\n", False),
        ("abc\r\n def", False),
        ("abc def", False),
        ('abc"}', False),
        ("caf\u00e9", False),
        ("", False),
        (None, False),
    ],
)
def test_request_id_is_kept_only_when_short_and_safe(value, kept):
    accepted = accepted_request_id(value)
    if kept:
        assert accepted == value
    else:
        assert HEX32.fullmatch(accepted)


def test_request_id_is_echoed_and_on_django_request_lines(client, capture, db):
    """In process: the middleware's id is in the response and on django.request's line."""
    logger, stream = capture()
    django_request = logging.getLogger("django.request")
    (handler,) = logger.handlers
    django_request.addHandler(handler)
    try:
        response = client.get("/no/such/page", headers={"X-Request-ID": "inproc-1"})
        generated = client.get("/no/such/page", headers={"X-Request-ID": "bad id"})
    finally:
        django_request.removeHandler(handler)
    assert response["X-Request-ID"] == "inproc-1"
    assert HEX32.fullmatch(generated["X-Request-ID"])
    records = json_lines(stream.getvalue())
    assert [(r["request_id"], r["status_code"], r["path"]) for r in records] == [
        ("inproc-1", 404, "/no/such/page"),
        (generated["X-Request-ID"], 404, "/no/such/page"),
    ]


def test_a_disallowed_host_is_no_error_record(client, db, caplog):
    """Anyone can send any Host: that must not produce ERROR records at will."""
    with caplog.at_level(logging.DEBUG):
        response = client.get("/api/v1/uploads/sessions", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    [record] = [r for r in caplog.records if r.name.startswith("django.security")]
    assert record.levelno == logging.WARNING and "evil.example" in record.getMessage()


def test_a_job_runs_lines_carry_its_job_and_a_run_id_of_its_own(capture):
    logger, stream = capture()
    for _ in range(2):
        with job_run("portal_cleanup", record=False):
            log_event(logger, "cleanup.step", "step done", duration_ms=1)
    first, second = json_lines(stream.getvalue())
    assert first["job"] == second["job"] == "portal_cleanup"
    assert re.fullmatch("[0-9a-f]{12}", first["run_id"])
    assert first["run_id"] != second["run_id"]
