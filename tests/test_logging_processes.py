"""Structured logging through real processes: gunicorn with gunicorn.conf.py, ``manage.py
runserver`` and management commands, run with ``PORTAL_LOG_FORMAT=json``; the tests read
what they print.
"""

import json
import re
import uuid

import pytest

from portal.observability import (
    REDACTED,
)
from tests.commands import run_command
from tests.processes import (
    AWS_SECRET,
    HEX32,
    RUNNER_SECRET,
    SECRET_KEY,
    ServerProcess,
    assert_record_contract,
    json_lines,
    run_manage,
)


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


def test_the_logging_tree_shows_a_set_up_that_fails_the_portal_checks(settings):
    """A diagnostic runs where the jobs refuse to (portal.E001 here)."""
    settings.PORTAL_CHUNK_SIZE_MIN = 64 * 2**20
    settings.PORTAL_CHUNK_SIZE = 8 * 2**20
    refused = run_command("portal_cleanup")
    assert refused.code == 2 and "portal.E001" in refused.err
    tree = run_command("portal_logging_tree")
    assert tree.code == 0 and 'o<--"portal"' in tree.out
