"""Pins for the ops area (issue #31), in-process: the system checks (``portal.checks``),
the settings values (``boot.config``), the access-log and client-error filters
(``boot.logging``), gunicorn's shutdown drain (``portal.health.drain``). Each test fails on
a careless change listed in ``tests/mutant_area_ops.py``."""

import errno
import logging
import sys
from datetime import timedelta

import pytest
import time_machine
from django.core.checks import Warning as CheckWarning
from django.core.checks.registry import registry
from django.core.files.storage import storages
from django.db import OperationalError
from django.test import Client
from django.utils import timezone

from boot import config as v
from boot.logging import ClientErrorFilter, ConsoleFormatter, GunicornAccessFilter, quiet_probe
from portal import checks as syschecks
from portal.health import checks as health_checks
from portal.health import drain
from portal.health import executor as probes
from portal.models import JobRun, OutboxEvent
from portal.services.status import page

MIB = 1024 * 1024
STRONG = "Zq8-xW3_rT6yU1iO0pA9sD2fG5hJ4kL7zX_cV-bN8mQ1wE3rT5y"  # 51 chars, many distinct


def ids(problems):
    return [problem.id for problem in problems]


@pytest.fixture
def clean(settings):
    """Settings every cross-field rule accepts; a test then moves one value."""
    settings.PORTAL_CHUNK_SIZE_MIN = settings.PORTAL_CHUNK_SIZE = 8 * MIB
    settings.PORTAL_CHUNK_SIZE_MAX = settings.PORTAL_MAX_FILE_SIZE = 16 * MIB
    settings.PORTAL_OUTBOX_BASE_DELAY_SECONDS = settings.PORTAL_OUTBOX_MAX_DELAY_SECONDS = 30.0
    settings.PORTAL_MIN_FREE_BYTES = 2 * MIB
    settings.PORTAL_FREE_SPACE_RESERVE_BYTES = 2 * MIB - 1
    settings.PORTAL_RUNNER_ENDPOINT = ""
    settings.PORTAL_STORAGE = "local"
    settings.SECRET_KEY = STRONG
    settings.PORTAL_METRICS_TOKEN = ""
    assert syschecks.check_settings() == []
    return settings


# --- portal.checks: the cross-field rules at their edges -----------------------------------


def test_chunk_sizes_equal_to_their_bounds_pass_one_byte_past_fails(clean):
    clean.PORTAL_CHUNK_SIZE_MAX = clean.PORTAL_MAX_FILE_SIZE  # equal: allowed
    assert syschecks.check_settings() == []
    clean.PORTAL_CHUNK_SIZE = 8 * MIB - 1
    [error] = syschecks.check_settings()
    assert error.id == "portal.E001"
    assert error.msg == (
        f"PORTAL_CHUNK_SIZE ({8 * MIB - 1}) must lie between PORTAL_CHUNK_SIZE_MIN ({8 * MIB}) "
        f"and PORTAL_CHUNK_SIZE_MAX ({16 * MIB})."
    )
    clean.PORTAL_CHUNK_SIZE = 8 * MIB
    clean.PORTAL_CHUNK_SIZE_MAX = 16 * MIB + 1
    assert ids(syschecks.check_settings()) == ["portal.E002"]


def test_outbox_delays_equal_pass_a_larger_base_fails(clean):
    clean.PORTAL_OUTBOX_BASE_DELAY_SECONDS = 30.5
    [error] = syschecks.check_settings()
    assert (error.id, error.msg) == (
        "portal.E003",
        "PORTAL_OUTBOX_BASE_DELAY_SECONDS (30.5) must not exceed "
        "PORTAL_OUTBOX_MAX_DELAY_SECONDS (30).",
    )


def test_a_reserve_must_stay_below_the_minimum_free(clean):
    clean.PORTAL_FREE_SPACE_RESERVE_BYTES = 2 * MIB
    assert ids(syschecks.check_settings()) == ["portal.E013"]
    clean.PORTAL_MIN_FREE_BYTES = 0  # the floor off: any reserve
    assert syschecks.check_settings() == []


def test_runner_endpoint_needs_its_secret(clean):
    clean.PORTAL_RUNNER_ENDPOINT = "http://runner.local/hook"
    clean.PORTAL_RUNNER_AUTH_SECRET = ""
    assert ids(syschecks.check_settings()) == ["portal.E005"]
    clean.PORTAL_RUNNER_AUTH_SECRET = STRONG
    assert syschecks.check_settings() == []


@pytest.mark.parametrize(
    ("bucket", "key_id", "secret", "expected"),
    [
        ("", "", "", ["portal.E006"]),
        ("portal", "", "", []),
        ("portal", "AKIDEXAMPLE", "s3cr3t", []),
        ("portal", "AKIDEXAMPLE", "", ["portal.E007"]),
        ("portal", "", "s3cr3t", ["portal.E007"]),
    ],
)
def test_s3_needs_a_bucket_and_both_keys_or_neither(clean, bucket, key_id, secret, expected):
    clean.PORTAL_STORAGE = "s3"
    clean.AWS_STORAGE_BUCKET_NAME = bucket
    clean.AWS_ACCESS_KEY_ID, clean.AWS_SECRET_ACCESS_KEY = key_id, secret
    assert ids(syschecks.check_settings()) == expected


def test_a_removed_setting_in_the_environment_is_named(clean, monkeypatch):
    monkeypatch.setenv("PORTAL_LOCAL_IN_PLACE_ASSEMBLY", "false")
    [error] = syschecks.check_settings()
    assert error.id == "portal.E014"
    assert error.msg.startswith("PORTAL_LOCAL_IN_PLACE_ASSEMBLY is no longer a setting: ")
    assert error.hint == "Remove PORTAL_LOCAL_IN_PLACE_ASSEMBLY from the environment."


def test_settings_problems_list_errors_with_hints_never_warnings(clean):
    def a_warning(app_configs=None, **kwargs):
        return [CheckWarning("only a warning", id="portal.W999")]

    registry.register(a_warning, syschecks.PORTAL_TAG)
    try:
        assert syschecks.settings_problems() == []
        clean.PORTAL_RUNNER_ENDPOINT = "http://runner.local/hook"
        clean.PORTAL_RUNNER_AUTH_SECRET = ""
        assert syschecks.settings_problems() == [
            "portal.E005: PORTAL_RUNNER_AUTH_SECRET is not set, but PORTAL_RUNNER_ENDPOINT is. "
            "(The runner verifies the X-Portal-Signature HMAC with this shared secret.)"
        ]
    finally:
        registry.registered_checks.discard(a_warning)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("a" * 7 + "bcdefgh" + "x" * 18, ""),  # 32 chars, 8 different: fine
        ("abcdefgh" * 4, ""),
        ("abcdefg" * 5, "has fewer than 8 different characters"),
        ("abcdefgh" * 4 + "i"[:0], ""),
        ("abcdefghij" * 3 + "k", "has 31 characters, fewer than 32"),
        ("x" * 20 + "CHANGE-ME" + "abcdefgh", "is a placeholder"),
        ("abcdefgh" * 4 + "-insecure", "is a placeholder"),
    ],
)
def test_weak_secret_at_its_limits(value, reason):
    assert syschecks.weak_secret(value, 32) == reason


def test_check_deploy_judges_each_secret(clean):
    assert syschecks.check_secrets() == []
    clean.SECRET_KEY = STRONG[:49]
    [error] = syschecks.check_secrets()
    assert (error.id, error.msg) == ("portal.E010", "SECRET_KEY has 49 characters, fewer than 50.")
    clean.SECRET_KEY = STRONG
    clean.PORTAL_RUNNER_AUTH_SECRET = "short-secret"
    assert syschecks.check_secrets() == []  # no endpoint: the secret is unused
    clean.PORTAL_RUNNER_ENDPOINT = "http://runner.local/hook"
    [error] = syschecks.check_secrets()
    assert (error.id, error.msg) == (
        "portal.E011",
        "PORTAL_RUNNER_AUTH_SECRET has 12 characters, fewer than 32.",
    )
    clean.PORTAL_RUNNER_ENDPOINT = ""
    clean.PORTAL_METRICS_TOKEN = STRONG[:20] + " " + STRONG[20:40]
    [error] = syschecks.check_secrets()
    assert (error.id, error.msg) == (
        "portal.E012",
        "PORTAL_METRICS_TOKEN contains whitespace, which a bearer token cannot carry.",
    )
    assert STRONG[:20] not in error.hint


# --- boot.config: the values, each rule at its edge -----------------------------------------


@pytest.fixture
def problems():
    v.PROBLEMS.clear()
    yield v.PROBLEMS
    v.PROBLEMS.clear()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("8388608", 8388608),
        ("1k", 1000),
        ("1KB", 1000),
        ("1KiB", 1024),
        ("8MiB", 8 * MIB),
        ("8 mb", 8_000_000),
        ("2GiB", 2 * 1024**3),
        ("1TiB", 1024**4),
        ("3b", 3),
    ],
)
def test_byte_sizes_read_decimal_and_binary_units(raw, expected):
    assert v.ByteSizeValue(1, min_value=1).to_python(raw) == expected


@pytest.mark.parametrize("raw", ["1.5MB", "-1", "8 parsecs", "MiB", "\uff11\uff12"])
def test_byte_sizes_refuse_what_is_no_size(raw):
    with pytest.raises(v.Invalid, match="must be a size in bytes"):
        v.ByteSizeValue(1, min_value=1).to_python(raw)


def test_numbers_take_their_bounds_and_refuse_one_past():
    value = v.IntValue(5, min_value=1, max_value=10)
    assert (value.to_python("1"), value.to_python(" 10 ")) == (1, 10)
    with pytest.raises(v.Invalid, match=r"^must be at least 1$"):
        value.to_python("0")
    with pytest.raises(v.Invalid, match=r"^must be at most 10$"):
        value.to_python("11")
    seconds = v.FloatValue(1.0, min_value=0, max_value=60)
    assert (seconds.to_python("0"), seconds.to_python("60")) == (0.0, 60.0)
    with pytest.raises(v.Invalid, match=r"^must be at least 0.001$"):
        v.FloatValue(1.0).to_python("0")


@pytest.mark.parametrize("raw", ["\uff11\uff12", "٣", "1e3", "", "twelve"])
def test_whole_numbers_are_ascii_digits(raw):
    with pytest.raises(v.Invalid, match=r"^must be a whole number$"):
        v.IntValue(5, min_value=1).to_python(raw)


def test_floats_refuse_non_ascii_and_non_finite():
    value = v.FloatValue(1.0, max_value=1e9)
    with pytest.raises(v.Invalid, match=r"^must be a number$"):
        value.to_python("\uff11.\uff15")
    for raw in ("nan", "inf", "-inf"):
        with pytest.raises(v.Invalid, match=r"^must be a finite number$"):
            value.to_python(raw)


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        ("https://a.example:65535", True),
        ("http://[::1]:1", True),
        ("https://a.example:65536", False),
        ("https://a.example:0", False),
        ("https://a.example/", False),
    ],
)
def test_origins_take_ports_1_to_65535(raw, ok):
    value = v.OriginListValue([])
    if ok:
        assert value.to_python(raw) == [raw]
    else:
        with pytest.raises(v.Invalid, match="is not an origin"):
            value.to_python(raw)


def test_a_bad_url_is_named_with_its_password_hidden(monkeypatch, problems):
    monkeypatch.setenv("PORTAL_RUNNER_ENDPOINT", "ftp://runner:hunter2secret@host/hook")
    assert v.HttpUrlValue("").setup("PORTAL_RUNNER_ENDPOINT") == ""
    [problem] = problems
    assert problem.startswith("PORTAL_RUNNER_ENDPOINT='ftp://runner:***@host/hook': ")
    assert "hunter2secret" not in problem


def test_a_long_bad_value_is_shortened_and_each_problem_kept(monkeypatch, problems):
    monkeypatch.setenv("PORTAL_CHUNK_SIZE", "9" * 70 + "parsecs")
    monkeypatch.setenv("PORTAL_CLEANUP_BATCH_SIZE", "0")
    assert v.ByteSizeValue(8, min_value=1).setup("PORTAL_CHUNK_SIZE") == 8
    assert v.IntValue(100, min_value=1).setup("PORTAL_CLEANUP_BATCH_SIZE") == 100
    assert problems == [
        f"PORTAL_CHUNK_SIZE={'9' * 60 + '…'!r}: must be a size in bytes such as 8388608, "
        "8MiB or 5GB",
        "PORTAL_CLEANUP_BATCH_SIZE='0': must be at least 1",
    ]
    with pytest.raises(v.SettingsError) as raised:
        v.raise_problems()
    assert str(raised.value).splitlines() == [f"  - {p}" for p in raised.value.problems]
    assert problems == []


def test_a_required_value_left_empty_is_a_problem(monkeypatch, problems):
    monkeypatch.setenv("SECRET_KEY", "   ")
    assert v.NamedValue("", required=True).setup("SECRET_KEY") == ""
    assert problems == ["SECRET_KEY: required in this configuration, but not set"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("yes", True), ("On", True), ("0", False), ("", False), ("n", False)],
)
def test_booleans(raw, expected):
    assert v.BoolValue(False).to_python(raw) is expected


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("postgres://u:p@db:65535/portal", True),
        ("postgres://u:p@db/portal", True),
        ("postgres://u:p@db:65536/portal", False),
        ("mysql://u:p@db/portal", False),
    ],
)
def test_database_urls_name_the_scheme_never_the_url(url, ok, problems):
    config = v.database_from_url(url)
    if ok:
        assert config["ENGINE"] == "django.db.backends.postgresql"
        assert problems == []
    else:
        assert config is None
        [problem] = problems
        assert problem.startswith(f"DATABASE_URL (scheme {url.split(':')[0]!r}): ")
        assert "u:p" not in problem


# --- boot.logging: the filters on real records ------------------------------------------


def access_record(status, path="/api/v1/files", **atoms):
    values = {
        "s": str(status),
        "U": path,
        "m": "GET",
        "M": 12,
        "B": 345,
        "h": "10.0.0.9",
        "a": "curl/8",
        "{x-portal-drain}o": "-",
        "{x-forwarded-for}i": "-",
        "{x-request-id}o": "-",
        **atoms,
    }
    return logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(r)s", (values,), None)


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


# --- portal.health.drain: gunicorn's master, with a stand-in arbiter -------------------------


class Arbiter:
    def __init__(self, tmp_dir):
        self.cfg = type("Cfg", (), {"worker_tmp_dir": str(tmp_dir)})()
        self.stopped = 0
        self.lines = []
        self.log = self
        self.handle_term = self.stop
        self.signal = lambda *args: None

    def stop(self):
        self.stopped += 1

    def info(self, message, *args):
        self.lines.append(("info", message % args))

    def error(self, message, *args):
        self.lines.append(("error", message % args))


@pytest.fixture
def timers(monkeypatch):
    set_to = []
    monkeypatch.setattr(drain.signal, "setitimer", lambda which, seconds: set_to.append(seconds))
    monkeypatch.setattr(drain.signal, "signal", lambda *args: None)
    monkeypatch.delenv(drain.MARKER_ENV, raising=False)
    return set_to


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


# --- portal.health: /health, /ready and /status ------------------------------------------


@pytest.fixture
def no_probe_cache(settings):
    settings.PORTAL_READY_CACHE_SECONDS = 0
    settings.PORTAL_HEALTH_CHECK_TIMEOUT_SECONDS = 30
    probes.results.clear()
    yield settings
    probes.results.clear()


@pytest.fixture
def staff(db, django_user_model):
    person = django_user_model.objects.create_user("oncall", password="pw-oncall", is_staff=True)
    client = Client()
    client.force_login(person)
    return client


def test_health_is_get_or_head_never_cached_with_its_length(settings):
    client = Client()
    response = client.get("/health")
    assert response.status_code == 200
    assert response["Cache-Control"] == "max-age=0, no-cache, no-store, must-revalidate, private"
    assert response["Content-Length"] == str(len(b'{"status": "ok"}'))
    refused = client.post("/health")
    assert refused.status_code == 405
    assert refused["Allow"] == "GET, HEAD"


def fill_up(monkeypatch, alias, exc):
    target = storages[alias]

    def save(name, content, max_length=None):
        raise exc

    monkeypatch.setattr(target, "save", save)


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_storage_is_ready_but_says_full(
    db, portal_storage, no_probe_cache, monkeypatch, caplog, number
):
    cause = OSError(number, "no room")
    wrapped = RuntimeError("write failed")
    wrapped.__cause__ = cause
    fill_up(monkeypatch, "portal_final", wrapped)
    with caplog.at_level(logging.INFO, logger="portal.health"):
        response = Client().get("/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "storage:portal_temp": "ok", "storage:portal_final": "full"},
    }
    assert not [r for r in caplog.records if getattr(r, "event", "") == "ready.check_failed"]


def test_a_failed_check_logs_its_cause_and_milliseconds(
    db, portal_storage, no_probe_cache, monkeypatch, caplog
):
    clock = {"now": 100.0}
    monkeypatch.setattr("health_check.base.timeit.default_timer", lambda: clock["now"])

    def save(name, content, max_length=None):
        clock["now"] += 0.25  # the write takes 250 ms, then fails
        try:
            raise PermissionError(errno.EACCES, "denied")
        except PermissionError as exc:
            raise RuntimeError("write failed") from exc

    monkeypatch.setattr(storages["portal_temp"], "save", save)
    with caplog.at_level(logging.INFO, logger="portal.health"):
        response = Client().get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["storage:portal_temp"] == "unavailable"
    [failure] = [r for r in caplog.records if getattr(r, "event", "") == "ready.check_failed"]
    # The check wraps the backend's error; the log names the wrapped one, the cause.
    assert (failure.check, failure.error_type) == ("storage:portal_temp", "RuntimeError")
    assert failure.error == "write failed"
    assert failure.duration_ms == 250


def status_json(client, **headers):
    return client.get("/status", **headers)


def test_a_database_error_in_a_status_check_is_unavailable_not_a_503(
    staff, portal_storage, no_probe_cache, monkeypatch
):
    async def broken(self):
        raise OperationalError("server closed the connection")

    monkeypatch.setattr(health_checks.OutboxBacklog, "measure", broken)
    response = staff.get("/status?format=json")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["outbox"] == {"state": "unavailable"}
    page = staff.get("/status", HTTP_ACCEPT="text/html")
    assert "the outbox could not be read: is the database up?" in page.content.decode()


@pytest.mark.parametrize(
    ("accept", "json"),
    [
        ("application/*", True),
        ("application/json;q=0.9, text/html;q=0.5", True),
        ("text/html, application/json;q=0.9", False),
        ("text/*", False),
        ("image/png", False),
        ("text/html;q=bad;;", False),
    ],
)
def test_status_answers_json_when_preferred(staff, portal_storage, no_probe_cache, accept, json):
    response = staff.get("/status", HTTP_ACCEPT=accept)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json" if json else "text/html")


def test_status_without_credentials_json_gets_401_a_browser_the_login(db, no_probe_cache):
    client = Client()
    refused = client.get("/status", HTTP_ACCEPT="application/*")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "missing_token"
    assert client.get("/status", HTTP_ACCEPT="text/*").status_code == 302


def test_a_free_volume_is_measured_on_both_roots_and_warns_below_twice_the_floor(
    staff, settings, data_dir, no_probe_cache, monkeypatch
):
    from tests.conftest import apply_storage

    apply_storage(settings, "local", data_dir)
    free = {"value": 0}

    class Usage:
        total = 100 * MIB
        percent = 50.0

        @property
        def free(self):
            return free["value"]

    monkeypatch.setattr(health_checks.psutil, "disk_usage", lambda path: Usage())
    settings.PORTAL_MIN_FREE_BYTES = 10 * MIB
    free["value"] = 20 * MIB
    disks = staff.get("/status?format=json").json()["disk"]
    assert set(disks) == {"portal_temp", "portal_final"}
    assert disks["portal_temp"]["state"] == "ok"
    assert disks["portal_temp"]["warn_below_bytes"] == 20 * MIB
    assert disks["portal_temp"]["refuse_new_uploads_below_bytes"] == 10 * MIB
    free["value"] = 20 * MIB - 1
    response = staff.get("/status?format=json")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["disk"]["portal_final"]["state"] == "warning"


def test_a_missing_volume_is_unavailable_on_status(
    staff, settings, data_dir, no_probe_cache, monkeypatch
):
    from tests.conftest import apply_storage

    apply_storage(settings, "local", data_dir)

    def missing(path):
        raise FileNotFoundError(path)

    monkeypatch.setattr(health_checks.psutil, "disk_usage", missing)
    disks = staff.get("/status?format=json").json()["disk"]
    assert disks["portal_temp"] == {"state": "unavailable"}


def finished_run(job, outcome, *, started_ago, took):
    now = timezone.now()
    return JobRun.objects.create(
        job=job,
        outcome=outcome,
        started_at=now - started_ago,
        finished_at=now - started_ago + took,
    )


def test_job_freshness_counts_from_the_end_and_warns_only_past_twice_its_period(
    staff, portal_storage, no_probe_cache
):
    with time_machine.travel(timezone.now(), tick=False):
        # Started 35 min ago, ended 30 min ago: exactly twice the 15 min period, not more.
        finished_run(
            "portal_cleanup",
            JobRun.Outcome.OK,
            started_ago=timedelta(minutes=35),
            took=timedelta(minutes=5),
        )
        job = staff.get("/status?format=json").json()["jobs"]["portal_cleanup"]
    assert (job["state"], job["age_seconds"], job["max_age_seconds"]) == ("ok", 1800, 1800)


def test_an_outbox_event_exactly_at_the_warning_age_is_no_backlog(
    staff, portal_storage, no_probe_cache
):
    from portal.services.jobs import OUTBOX_BACKLOG_WARN_AGE

    with time_machine.travel(timezone.now(), tick=False):
        event = OutboxEvent.objects.create(
            event_type="file.uploaded",
            aggregate_id="x",
            payload={},
            idempotency_key="edge",
            next_attempt_at=timezone.now(),
        )
        OutboxEvent.objects.filter(pk=event.pk).update(
            created_at=timezone.now() - OUTBOX_BACKLOG_WARN_AGE
        )
        outbox = staff.get("/status?format=json").json()["outbox"]
        assert outbox["state"] == "ok"
        page = staff.get("/status", HTTP_ACCEPT="text/html").content.decode()
        assert "nothing stuck." in page
        OutboxEvent.objects.filter(pk=event.pk).update(
            created_at=timezone.now() - OUTBOX_BACKLOG_WARN_AGE - timedelta(seconds=1)
        )
        assert staff.get("/status?format=json").json()["outbox"]["state"] == "warning"


def test_failed_outbox_events_alone_warn(staff, portal_storage, no_probe_cache):
    OutboxEvent.objects.create(
        event_type="file.uploaded",
        aggregate_id="x",
        payload={},
        idempotency_key="gave-up",
        status=OutboxEvent.Status.FAILED,
        next_attempt_at=timezone.now(),
    )
    outbox = staff.get("/status?format=json").json()["outbox"]
    assert outbox == {
        "state": "warning",
        "pending": 0,
        "oldest_pending_age_seconds": None,
        "failed": 1,
    }


# --- portal.services.status: units and reasons at their boundaries ------------------------


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 bytes"),
        (1, "1 bytes"),
        (1023, "1023 bytes"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (1024**2, "1.0 MiB"),
        (99 * 1024**3, "99.0 GiB"),
        (1024**4, "1.0 TiB"),
        (1024**6, "1024 PiB"),
    ],
)
def test_binary_sizes(count, text):
    assert page.binary_size(count) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-3, "0 ms"),
        (0, "0 ms"),
        (0.0004, "0 ms"),
        (0.999, "999 ms"),
        (1, "1.0 s"),
        (9.94, "9.9 s"),
        (10, "10 s"),
        (59.6, "1 min"),
        (3599, "59 min"),
        (3600, "1 h"),
        (3660, "1 h 1 min"),
        (9 * 3600 + 59 * 60, "9 h 59 min"),
        (86400 + 3600, "1 d 1 h"),
        (12 * 86400 + 7200, "12 d"),
    ],
)
def test_durations(seconds, text):
    assert page.duration(seconds) == text


def test_ago_and_sentences():
    assert (page.ago(0), page.ago(0.99), page.ago(1)) == ("just now", "just now", "1.0 s ago")
    assert page.sentence("is portal_dispatch running?") == "is portal_dispatch running?"
    assert page.sentence("stop!") == "stop!"
    assert page.sentence("nothing stuck") == "nothing stuck."
    assert page.sentence("") == ""
    assert page.state("weird") == {"name": "weird", "mark": "?"}


def disk(state="ok", free=50 * MIB, total=100 * MIB, warn=20 * MIB, refuse=10 * MIB):
    return {
        "state": state,
        "free_bytes": free,
        "total_bytes": total,
        "warn_below_bytes": warn,
        "refuse_new_uploads_below_bytes": refuse,
    }


@pytest.mark.parametrize(
    ("figures", "reason"),
    [
        (disk(), "enough free space."),
        (disk(free=20 * MIB), "enough free space."),
        (
            disk(state="warning", free=20 * MIB - 1),
            "free space is below the warning level; new uploads stop soon.",
        ),
        (
            disk(state="warning", free=10 * MIB - 1),
            "new uploads are refused: free space is below the limit.",
        ),
        (disk(state="warning", warn=0, refuse=0), "the volume is 50 % used."),
        ({"state": "unavailable"}, "the storage root is missing or unreadable."),
    ],
)
def test_disk_reasons(figures, reason):
    assert page.disk_section("portal_temp", figures)["reason"] == reason


def test_disk_thresholds_off_and_an_empty_volume():
    section = page.disk_section("portal_temp", disk(total=0, free=0, warn=0, refuse=0))
    assert (section["used_share"], section["warn_below"]) == (0, "off")
    assert section["refuse_below"] == "off (PORTAL_MIN_FREE_BYTES=0)"
    assert (section["free"], section["total"]) == ("0 bytes", "0 bytes")


@pytest.mark.parametrize(
    ("figures", "reason", "oldest"),
    [
        ({"state": "ok", "pending": 0, "failed": 0}, "nothing stuck.", "none pending"),
        (
            {"state": "ok", "pending": 1, "failed": 0, "oldest_pending_age_seconds": 900},
            "nothing stuck.",
            "15 min",
        ),
        (
            {"state": "warning", "pending": 1, "failed": 0, "oldest_pending_age_seconds": 901},
            "the oldest pending event waits for 15 min: is portal_dispatch running?",
            "15 min",
        ),
        ({"state": "unavailable"}, "the outbox could not be read: is the database up?", None),
    ],
)
def test_outbox_reasons(db, figures, reason, oldest):
    from portal.services.jobs import OUTBOX_BACKLOG_WARN_AGE

    assert timedelta(minutes=15) == OUTBOX_BACKLOG_WARN_AGE
    section = page.outbox_section(figures, timezone.now())
    assert section["reason"] == reason
    if oldest:
        assert section["oldest_pending"] == oldest


def test_only_staff_with_the_change_permission_may_requeue(db, django_user_model):
    from django.contrib.auth.models import Permission

    person = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    assert not page.can_requeue(person)
    person.user_permissions.add(Permission.objects.get(codename="change_outboxevent"))
    person = django_user_model.objects.get(pk=person.pk)  # the permission cache
    assert page.can_requeue(person)
    person.is_staff = False
    assert not page.can_requeue(person)


# --- portal.services.status.trend -----------------------------------------------------------


@time_machine.travel("2026-12-07 14:30:00+00:00", tick=False)
def test_backlog_points_take_whole_numbers_of_successful_runs_only(db):
    from portal.services.status import trend

    now = timezone.now()
    for minutes, backlog, outcome in [
        (5, 7, JobRun.Outcome.OK),
        (4, True, JobRun.Outcome.OK),
        (3, "9", JobRun.Outcome.PARTIAL),
        (2, 4, JobRun.Outcome.PARTIAL),
        (1, 99, JobRun.Outcome.FAILED),
    ]:
        at = now - timedelta(minutes=minutes)
        JobRun.objects.create(
            job="portal_dispatch",
            started_at=at,
            finished_at=at,
            outcome=outcome,
            counts={"backlog": backlog},
        )
    assert [backlog for _, backlog in trend.backlog_per_run()] == [7, 4]


@time_machine.travel("2026-12-07 14:30:00+00:00", tick=False)
def test_hour_labels_every_third_hour(db):
    from portal.services.status import trend

    hours = trend.hourly_uploads(timezone.now())
    svg = str(trend.uploads_charts(hours)["uploads_svg"])
    labels = [label for label in ("00h", "03h", "06h", "09h", "12h", "15h", "18h", "21h")]
    for label in labels:
        assert f">{label}</text>" in svg
    for label in ("01h", "04h", "08h", "14h"):
        assert f">{label}</text>" not in svg


# --- portal.metrics: access, labels and the readiness gauges ---------------------------------


@pytest.fixture
def metrics_token(settings):
    from portal.metrics import collector
    from tests.metrics_helpers import TOKEN

    settings.PORTAL_METRICS_TOKEN = TOKEN
    collector.collector.clear()
    return TOKEN


@pytest.mark.parametrize("scheme", ["bearer ", "BEARER ", "Bearer  ", "Bearer \t"])
def test_the_metrics_token_in_any_case_and_spacing(db, metrics_token, scheme):
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"{scheme}{metrics_token} ")
    assert response.status_code == 200
    assert response["Cache-Control"] == "max-age=0, no-cache, no-store, must-revalidate, private"
    assert response["Content-Length"] == str(len(response.content))
    assert b"portal_metrics_database_up 1.0" in response.content


def test_a_full_storage_still_reads_up(
    db, portal_storage, no_probe_cache, metrics_token, monkeypatch
):
    from tests.metrics_helpers import scrape, value

    fill_up(monkeypatch, "portal_temp", OSError(errno.ENOSPC, "no room"))
    client = Client()
    assert client.get("/ready").status_code == 200
    samples = scrape(client)
    assert value(samples, "portal_ready_check_up", check="storage:portal_temp") == 1


def test_an_escaped_exception_is_counted_as_5xx(db):
    from django.test import RequestFactory
    from prometheus_client import REGISTRY

    from portal.metrics.http import MetricsMiddleware

    labels = {"view": "unresolved", "method": "GET", "status": "5xx"}
    before = REGISTRY.get_sample_value("portal_http_requests_total", labels) or 0

    def explodes(request):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        MetricsMiddleware(explodes)(RequestFactory().get("/somewhere"))
    assert REGISTRY.get_sample_value("portal_http_requests_total", labels) == before + 1


def test_an_active_non_staff_session_may_not_read_the_metrics(db, django_user_model):
    person = django_user_model.objects.create_user("member", password="pw-member")
    client = Client()
    client.force_login(person)
    response = client.get("/metrics")
    assert response.status_code == 403
    assert b"portal_" not in response.content


# --- portal.observability: context and redaction at their edges -----------------------------


@pytest.fixture
def capture():
    import io
    import json
    import uuid

    from boot.logging import PortalJsonFormatter
    from portal.observability import ContextFilter, RedactingFilter

    made = []

    def make(secrets=()):
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.addFilter(ContextFilter())
        handler.addFilter(RedactingFilter(secrets=secrets))
        handler.setFormatter(PortalJsonFormatter())
        logger = logging.getLogger(f"portal.test_pins_ops.{uuid.uuid4().hex[:8]}")
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        made.append((logger, handler))
        return logger, lambda: [json.loads(line) for line in stream.getvalue().splitlines()]

    yield make
    for logger, handler in made:
        logger.removeHandler(handler)


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


# --- portal.admin ---------------------------------------------------------------------------


def test_only_a_superuser_may_change_an_outbox_event(admin_client, django_user_model):
    from django.contrib.auth.models import Permission

    event = OutboxEvent.objects.create(
        event_type="file.uploaded",
        aggregate_id="x",
        payload={},
        idempotency_key="admin-edit",
        status=OutboxEvent.Status.FAILED,
        next_attempt_at=timezone.now(),
    )
    url = f"/admin/portal/outboxevent/{event.pk}/change/"
    assert admin_client.get(url).context["has_change_permission"] is True
    person = django_user_model.objects.create_user("desk", password="pw-desk", is_staff=True)
    person.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_outboxevent", "change_outboxevent"])
    )
    client = Client()
    client.force_login(person)
    response = client.get(url)
    assert response.status_code == 200
    assert response.context["has_change_permission"] is False


def test_a_user_without_sessions_shows_zero_pending_bytes(admin_client):
    html = admin_client.get("/admin/auth/user/").content.decode()
    assert '<td class="field-open_sessions">0</td>' in html
    assert '<td class="field-pending_bytes">0</td>' in html


# --- portal.health.executor and lanes ------------------------------------------------------


def test_a_cached_answer_lives_less_than_its_max_age_and_never_from_the_future():
    cache = probes.ResultCache()
    with time_machine.travel("2026-12-07 14:30:00+00:00", tick=False) as clock:
        cache.put("ready", "answer")
        assert cache.get("ready", 0) is None
        clock.shift(1.999)
        assert cache.get("ready", 2) == "answer"
        clock.shift(0.001)
        assert cache.get("ready", 2) is None
        clock.move_to("2026-12-07 14:29:59+00:00")  # the clock stepped back
        assert cache.get("ready", 2) is None


def test_a_finished_call_is_not_shared_with_the_next_probe():
    pool = probes.SingleFlightExecutor(max_workers=1)

    class Check:
        timeout = timedelta(seconds=5)
        answer = 1

        def __repr__(self):
            return "Check()"

        def run(self):
            return self.answer

    check = Check()
    assert pool.submit(check.run).result(timeout=5) == 1
    check.answer = 2
    assert pool.submit(check.run).result(timeout=5) == 2


@pytest.mark.parametrize(
    ("head", "lane"),
    [
        (b"GET /ready?verbose=1 HTTP/1.1\r\nHost: x\r\n\r\n", "/ready"),
        (b"HEAD /health?probe HTTP/1.0\r\n\r\n", "/health"),
        (b"POST /health HTTP/1.1\r\nHost: x\r\n\r\n", None),
        (b"DELETE /ready HTTP/1.1\r\n\r\n", None),
        (b"PATCH /api/v1/tus/abc HTTP/2.0\r\nContent-Length: 5\r\n\r\n", None),
        (b"PATCH /api/v1/tus/abc HTTP/1.1\r\nContent-Length: 5\r\n\r\n", "tus"),
    ],
)
def test_lanes_for_queries_methods_and_versions(head, lane):
    from portal.health.lanes import lane_for

    assert lane_for(head) == lane


# --- boot.preflight: gunicorn's check before any worker, in this process --------------------


def test_preflight_prints_each_problem_and_exits_2(clean, capsys):
    from boot import preflight
    from portal import exitcodes

    assert preflight.main() == exitcodes.OK
    assert capsys.readouterr().out == ""
    clean.PORTAL_CHUNK_SIZE = 1
    clean.PORTAL_RUNNER_ENDPOINT = "http://runner.local/hook"
    clean.PORTAL_RUNNER_AUTH_SECRET = ""
    assert preflight.main() == exitcodes.USAGE == 2
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["portal.E001", "portal.E005"]


def test_a_directory_that_cannot_be_made_names_its_variable(tmp_path, monkeypatch, problems):
    from boot import settings as boot_settings

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("PORTAL_DATA_DIR", str(blocker))
    boot_settings._make_dir(blocker / "temp", "PORTAL_DATA_DIR")
    boot_settings._make_database_dir(":memory:", None)
    assert problems == [
        f"PORTAL_DATA_DIR={str(blocker)!r}: cannot create the directory "
        f"{str(blocker / 'temp')!r} (Not a directory)"
    ]
