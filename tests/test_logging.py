"""Structured logging: the JSON and console formats, context, redaction, request ids.

Unit tests drive a real logger through a real handler with the portal's filters and
formatters into a stream; the rest run real processes (gunicorn with gunicorn.conf.py,
``manage.py runserver``, management commands) with ``PORTAL_LOG_FORMAT=json`` and read
what they print. ``ServerProcess`` and ``json_lines`` are shared with
``test_logging_events.py``.
"""

import http.client
import io
import json
import logging
import re
import secrets
import signal
import socket
import subprocess
import time
import uuid
from datetime import datetime, timedelta

import pytest
from pythonjsonlogger.json import JsonFormatter

from boot.logging import ConsoleFormatter, PortalJsonFormatter, build_logging
from portal.middleware import MAX_REQUEST_ID_CHARS, accepted_request_id
from portal.observability import (
    REDACTED,
    ContextFilter,
    RedactingFilter,
    bind,
    configured_secrets,
    log_event,
)
from tests.conftest import PYTHON, ROOT, free_port

SECRET_KEY = "sk-" + secrets.token_hex(24)
RUNNER_SECRET = "runner-" + secrets.token_hex(16)
AWS_SECRET = "aws/" + secrets.token_hex(20)
HEX32 = re.compile(r"[0-9a-f]{32}")


def new_token():
    return "pt_" + secrets.token_urlsafe(32)


# --- helpers shared with test_logging_events.py ------------------------------------------


def json_lines(text, *, where="output"):
    """Every line of ``text`` parsed as one JSON object (the one-record-per-line rule)."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"{where} line {number} is not JSON: {line[:300]!r}")
        assert isinstance(record, dict), line
        records.append(record)
    return records


def assert_record_contract(record):
    """timestamp (UTC ISO 8601), level, logger and message on every record."""
    stamp = datetime.fromisoformat(record["timestamp"])
    assert stamp.utcoffset() == timedelta(0), record
    assert record["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}, record
    assert record["logger"] and isinstance(record["message"], str), record


class ServerProcess:
    """A real server process on a free port; its stdout and stderr go to files."""

    def __init__(self, argv, env, tmp_path, port):
        self.port = port
        self.out_path = tmp_path / f"server-{port}.out"
        self.err_path = tmp_path / f"server-{port}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env={**env, "PYTHONUNBUFFERED": "1"}, stdout=out, stderr=err
            )
        self._wait_until_serving()

    @classmethod
    def gunicorn(cls, env, tmp_path):
        port = free_port()
        env = {
            **env,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "WEB_CONCURRENCY": "1",
            "GUNICORN_THREADS": "2",
        }
        return cls([PYTHON, "-m", "gunicorn", "-c", "gunicorn.conf.py"], env, tmp_path, port)

    @classmethod
    def runserver(cls, env, tmp_path):
        port = free_port()
        argv = [PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
        return cls(argv, env, tmp_path, port)

    def _wait_until_serving(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited early:\n{self.stdout()}\n{self.stderr()}")
            try:
                if self.request("GET", "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"server did not serve within {timeout}s:\n{self.stdout()}\n{self.stderr()}")

    def request(self, method, path, *, headers=None, body=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response, response.read()
        finally:
            connection.close()

    def raw(self, data):
        """Send bytes as they are (headers http.client refuses to send); return the status
        and the headers of the answer."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(data)
            received = b""
            # Until the server closes (send "Connection: close"): it logs before closing.
            while chunk := sock.recv(65536):
                received += chunk
        head = received.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
        return int(head[0].split()[1]), {k.lower(): v for k, v in headers.items()}

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def stdout(self):
        return self.out_path.read_text(errors="replace")

    def stderr(self):
        return self.err_path.read_text(errors="replace")

    def output(self):
        return self.stdout() + self.stderr()

    def records(self):
        """All records (stdout and stderr), after asserting every line is JSON."""
        return json_lines(self.stdout(), where="stdout") + json_lines(self.stderr(), where="stderr")


def run_manage(env, *args, timeout=120, check=True):
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result


# --- unit tests: a real logger, a real handler, the portal's filters and formatters -------


@pytest.fixture
def capture():
    """Make a logger whose handler is the portal's (context, redaction, formatter) on a stream."""
    made = []

    def make(fmt="json", secrets=()):
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.addFilter(ContextFilter())
        handler.addFilter(RedactingFilter(secrets=secrets))
        handler.setFormatter(PortalJsonFormatter() if fmt == "json" else ConsoleFormatter())
        logger = logging.getLogger(f"portal.test_logging.{uuid.uuid4().hex[:8]}")
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        made.append((logger, handler))
        return logger, stream

    yield make
    for logger, handler in made:
        logger.removeHandler(handler)


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


# --- real processes -----------------------------------------------------------------------


@pytest.fixture
def prod_env(subprocess_env):
    """The production configuration: JSON by default (no PORTAL_LOG_FORMAT), known secrets."""
    env = {k: v for k, v in subprocess_env.items() if k != "PORTAL_LOG_FORMAT"}
    env.update(
        {
            "DJANGO_CONFIGURATION": "Prod",
            "SECRET_KEY": SECRET_KEY,
            "PORTAL_RUNNER_AUTH_SECRET": RUNNER_SECRET,
            "PORTAL_RUNNER_ENDPOINT": "http://127.0.0.1:9/runner",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "false",
            "PORTAL_LOG_LEVEL": "info",
            "PORTAL_DRAIN_SECONDS": "0",  # no balancer to leave: stop at once
        }
    )
    if env.get("PORTAL_STORAGE") != "s3":
        env["AWS_SECRET_ACCESS_KEY"] = AWS_SECRET
    return env


@pytest.fixture
def api_token(user):
    from portal.services.tokens import create_token

    return create_token(user)[1]


@pytest.mark.slow
def test_gunicorn_logs_json_lines_with_request_ids_and_quiet_probes(prod_env, api_token, tmp_path):
    server = ServerProcess.gunicorn(prod_env, tmp_path)
    try:
        for method, path in [("GET", "/health"), ("HEAD", "/health"), ("GET", "/ready")]:
            assert server.request(method, path)[0] == 200

        status, response, body = server.request(
            "GET", "/no/such/page", headers={"X-Request-ID": "client-id.1"}
        )
        assert status == 404
        assert response.getheader("X-Request-ID") == "client-id.1"
        assert SECRET_KEY.encode() not in body and b"SECRET_KEY" not in body

        session_path = f"/api/v1/uploads/sessions/{uuid.uuid4()}?token={api_token}"
        status, response, _ = server.request(
            "GET", session_path, headers={"Authorization": f"Bearer {api_token}"}
        )
        assert status == 404
        generated = response.getheader("X-Request-ID")
        assert HEX32.fullmatch(generated)

        status, _, _ = server.request(
            "GET",
            "/api/v1/uploads/sessions",
            headers={"Authorization": "Bearer pt_wrongwrongwrong1"},
        )
        assert status in (401, 405)

        for crafted in ("tab\there", "q" * 8000, "semi;colon"):
            status, response, _ = server.request(
                "GET", "/no/such/page", headers={"X-Request-ID": crafted}
            )
            assert HEX32.fullmatch(response.getheader("X-Request-ID")), crafted

        # A newline or 10 kB never reaches Django: gunicorn refuses the request itself.
        for crafted in (b"abc\ndef", b"abc\r\n def", b"z" * 10_240):
            status, _ = server.raw(
                b"GET /no/such/page HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                b"X-Request-ID: " + crafted + b"\r\n\r\n"
            )
            assert status in (400, 431)
    finally:
        server.stop()

    output = server.output()
    for secret in (SECRET_KEY, RUNNER_SECRET, AWS_SECRET, api_token, "pt_wrongwrongwrong1"):
        assert secret not in output
    assert "z" * 1000 not in output and "q" * 1000 not in output
    records = server.records()
    for record in records:
        assert_record_contract(record)

    access = [r for r in records if r["logger"] == "gunicorn.access"]
    assert not [r for r in access if r["path"] in ("/health", "/ready")], "probes logged"
    assert {r["logger"] for r in records} >= {"gunicorn.error", "gunicorn.access", "django.request"}

    client_lines = [r for r in records if r.get("request_id") == "client-id.1"]
    assert {r["logger"] for r in client_lines} == {"django.request", "gunicorn.access"}
    (access_line,) = [r for r in client_lines if r["logger"] == "gunicorn.access"]
    assert access_line["status_code"] == 404
    assert access_line["http_method"] == "GET"
    assert access_line["path"] == "/no/such/page"
    assert isinstance(access_line["duration_ms"], int)
    assert access_line["level"] == "WARNING"

    generated_lines = [r for r in records if r.get("request_id") == generated]
    assert {r["logger"] for r in generated_lines} == {"django.request", "gunicorn.access"}
    assert all("?" not in r.get("path", "") for r in generated_lines)


@pytest.mark.slow
def test_gunicorn_logs_probe_failures(subprocess_env, tmp_path):
    """A failing /ready is logged (by the access log, Django and the readiness event)."""
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the storage root should be")
    env = {**subprocess_env, "PORTAL_DATA_DIR": str(blocked), "PORTAL_STORAGE": "local"}
    server = ServerProcess.gunicorn(env, tmp_path)
    try:
        status, _, _ = server.request("GET", "/ready", headers={"X-Request-ID": "probe-1"})
        assert status == 503
    finally:
        server.stop()
    records = [r for r in server.records() if r.get("request_id") == "probe-1"]
    access = [r for r in records if r["logger"] == "gunicorn.access"]
    assert [(r["path"], r["status_code"], r["level"]) for r in access] == [("/ready", 503, "ERROR")]
    assert any(r.get("event") == "ready.check_failed" for r in records), records


@pytest.mark.slow
def test_runserver_replaces_crafted_request_ids(subprocess_env, tmp_path):
    """runserver lets a folded (multi-line) or 10 kB header through: the id is replaced."""
    server = ServerProcess.runserver(subprocess_env, tmp_path)
    crafted = {"folded": b"evil\r\n injected", "huge": b"z" * 10_240, "good": b"fine-id_2"}
    seen = {}
    try:
        for name, value in crafted.items():
            status, headers = server.raw(
                b"GET /no/such/page HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                b"X-Request-ID: " + value + b"\r\n\r\n"
            )
            assert status == 404
            seen[name] = headers["x-request-id"]
        assert server.request("GET", "/health")[0] == 200
    finally:
        server.stop()
    assert seen["good"] == "fine-id_2"
    assert HEX32.fullmatch(seen["folded"]) and HEX32.fullmatch(seen["huge"])
    # runserver prints its banner as plain text; the log records are the JSON lines.
    records = [json.loads(line) for line in server.stdout().splitlines() if line.startswith("{")]
    by_logger = {}
    for record in records:
        by_logger.setdefault(record["logger"], []).append(record)
    assert sorted(r["request_id"] for r in by_logger["django.request"]) == sorted(seen.values())
    server_lines = by_logger["django.server"]
    assert [r["path"] for r in server_lines] == ["/no/such/page"] * 3, "probe logged"
    output = server.output()
    assert "injected" not in output and "z" * 100 not in output


@pytest.mark.slow
def test_console_format_in_dev(subprocess_env, tmp_path):
    env = {k: v for k, v in subprocess_env.items() if k != "PORTAL_LOG_FORMAT"}
    env["DJANGO_CONFIGURATION"] = "Dev"
    server = ServerProcess.runserver(env, tmp_path)
    try:
        server.request("GET", "/health")
        # Read until runserver closes the connection: it logs the request before that.
        status, _ = server.raw(
            b"GET /no/such/page HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"X-Request-ID: dev-1\r\n\r\n"
        )
        assert status == 404
    finally:
        server.stop()
    lines = server.stdout().splitlines() + server.stderr().splitlines()
    pattern = re.compile(r"\d\d:\d\d:\d\d WARNING django\.request: Not Found: /no/such/page .*")
    (line,) = [line for line in lines if pattern.fullmatch(line)]
    assert "request_id=dev-1" in line and "status_code=404" in line
    assert any(re.match(r"\d\d:\d\d:\d\d WARNING django\.server: .*GET /no/such", x) for x in lines)
    assert not any("/health" in x for x in lines)
    assert not any(x.startswith("{") for x in lines)


def test_a_secret_in_a_logged_exception_never_reaches_the_output(subprocess_env, api_token):
    """A command process logs exceptions that carry every secret: none is printed."""
    env = {
        **subprocess_env,
        "SECRET_KEY": SECRET_KEY,
        "PORTAL_RUNNER_AUTH_SECRET": RUNNER_SECRET,
        "PORTAL_RUNNER_ENDPOINT": "http://127.0.0.1:9/runner",
    }
    code = f"""
import logging
from django.conf import settings
from portal.management.base import PortalCommand

log = logging.getLogger("portal.leaky")
try:
    raise RuntimeError(
        "key " + settings.SECRET_KEY + "\\nrunner " + settings.PORTAL_RUNNER_AUTH_SECRET
    )
except RuntimeError:
    log.exception("failed: %s", {{"HTTP_AUTHORIZATION": "Bearer {api_token}"}})


class Leaky(PortalCommand):
    job_name = "leaky"

    def handle(self, *args, **options):
        log.warning("about to fail", extra={{"token": "{api_token}"}})
        raise ValueError("cannot sign with " + settings.PORTAL_RUNNER_AUTH_SECRET)


Leaky().run_from_argv(["manage.py", "leaky"])
"""
    result = run_manage(env, "shell", "-v", "0", "-c", code, check=False)
    assert result.returncode == 1, result.stderr
    output = result.stdout + result.stderr
    for secret in (SECRET_KEY, RUNNER_SECRET, api_token):
        assert secret not in output
    records = json_lines(result.stdout, where="stdout") + json_lines(result.stderr, where="stderr")
    first, warning, failure = records
    assert first["exception"]["type"] == "RuntimeError"
    assert first["exception"]["message"] == f"key {REDACTED}\nrunner {REDACTED}"
    assert first["message"] == f"failed: {{'HTTP_AUTHORIZATION': '{REDACTED}'}}"
    assert warning["token"] == REDACTED
    assert failure["logger"] == "portal.commands"
    assert failure["exception"]["message"] == f"cannot sign with {REDACTED}"
    assert failure["exit_code"] == 1
    assert warning["job"] == failure["job"] == "leaky"
    assert warning["run_id"] == failure["run_id"]


def test_logging_tree_shows_portal_and_django_reaching_the_json_handler(subprocess_env):
    tree = run_manage(subprocess_env, "portal_logging_tree").stdout
    root, _, rest = tree.partition("\n   |\n")
    assert root.startswith('<--""')
    assert "Handler Stream <_io.TextIOWrapper name='<stdout>'" in root
    assert "Formatter <boot.logging.PortalJsonFormatter" in root
    assert "Filter <ContextFilter" in root and "Filter <RedactingFilter" in root
    # The root's is the only handler: every propagating logger ends there.
    assert tree.count("Handler ") == 1
    for name in (
        "portal",
        "portal.services.sessions",
        "django",
        "django.request",
        "django.server",
        "django.security",
        "gunicorn.access",
        "gunicorn.error",
    ):
        assert f'o<--"{name}"' in rest, name
    assert "Propagate OFF" not in tree

    dev = {k: v for k, v in subprocess_env.items() if k != "PORTAL_LOG_FORMAT"}
    dev["DJANGO_CONFIGURATION"] = "Dev"
    dev_tree = run_manage(dev, "portal_logging_tree").stdout
    assert "Formatter <boot.logging.ConsoleFormatter" in dev_tree


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
