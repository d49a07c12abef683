"""Settings: every bad value names its variable and rule; Prod needs its secrets."""

import subprocess

import pytest

from tests.conftest import PYTHON, ROOT
from tests.settings_helpers import PROD_ENV, run_check

BAD_VALUES = [
    ("PORTAL_MAX_FILE_SIZE", "lots", "must be a size in bytes"),
    ("PORTAL_MAX_FILE_SIZE", "-5", "must be a size in bytes"),
    ("PORTAL_CHUNK_SIZE", "abc", "must be a size in bytes"),
    ("PORTAL_CHUNK_SIZE", "0", "must be at least 1"),
    ("PORTAL_CHUNK_SIZE_MIN", "1.5MB", "must be a size in bytes"),
    ("PORTAL_CHUNK_SIZE_MAX", "8 parsecs", "must be a size in bytes"),
    ("PORTAL_SESSION_TTL_HOURS", "soon", "must be a number"),
    ("PORTAL_SESSION_TTL_HOURS", "-1", "must be at least"),
    ("PORTAL_SESSION_TTL_HOURS", "0", "must be at least"),
    ("PORTAL_ORPHAN_GRACE_MINUTES", "nan", "must be a finite number"),
    ("PORTAL_FAILED_SESSION_RETENTION_DAYS", "x", "must be a number"),
    ("PORTAL_CLEANUP_BATCH_SIZE", "0", "must be at least 1"),
    ("PORTAL_CLEANUP_BATCH_SIZE", "1e3", "must be a whole number"),
    ("PORTAL_OUTBOX_BASE_DELAY_SECONDS", "-3", "must be at least"),
    ("PORTAL_OUTBOX_MAX_DELAY_SECONDS", "inf", "must be a finite number"),
    ("PORTAL_OUTBOX_MAX_ATTEMPTS", "many", "must be a whole number"),
    ("PORTAL_OUTBOX_RETENTION_DAYS", "", "must be a number"),
    ("PORTAL_RUNNER_ENDPOINT", "ftp://runner", "must be an http:// or https:// URL"),
    ("PORTAL_RUNNER_ENDPOINT", "not a url", "must be an http:// or https:// URL"),
    ("PORTAL_RUNNER_TIMEOUT_SECONDS", "0", "must be at least"),
    ("PORTAL_HEALTH_CHECK_TIMEOUT_SECONDS", "fast", "must be a number"),
    ("PORTAL_READY_CACHE_SECONDS", "-1", "must be at least 0"),
    ("PORTAL_DRAIN_SECONDS", "-1", "must be at least 0"),
    ("PORTAL_FREE_SPACE_RESERVE_BYTES", "-1MiB", "must be a size in bytes"),
    ("PORTAL_FREE_SPACE_RESERVE_BYTES", "lots", "must be a size in bytes"),
    ("PORTAL_DRAIN_SECONDS", "soon", "must be a number"),
    ("PORTAL_BEHIND_PROXY", "maybe", "must be true or false"),
    ("PORTAL_LOG_FORMAT", "xml", "must be one of json, console"),
    ("PORTAL_LOG_LEVEL", "loud", "must be one of debug"),
    ("PORTAL_STORAGE", "ftp", "must be one of local, s3"),
    ("PORTAL_CORS_ALLOWED_ORIGINS", "https://app.example.com/", "is not an origin"),
    ("PORTAL_CORS_ALLOWED_ORIGINS", "https://a.example,*", "is not an origin"),
    ("AWS_S3_ENDPOINT_URL", "minio:9000", "must be an http:// or https:// URL"),
]

CROSS_FIELD = [
    ({"PORTAL_CHUNK_SIZE_MIN": "16MiB", "PORTAL_CHUNK_SIZE": "8MiB"}, "portal.E001"),
    ({"PORTAL_CHUNK_SIZE": "128MiB"}, "portal.E001"),
    ({"PORTAL_MAX_FILE_SIZE": "1MiB", "PORTAL_CHUNK_SIZE_MIN": "64KiB"}, "portal.E002"),
    (
        {"PORTAL_OUTBOX_BASE_DELAY_SECONDS": "100", "PORTAL_OUTBOX_MAX_DELAY_SECONDS": "10"},
        "portal.E003",
    ),
    ({"PORTAL_RUNNER_ENDPOINT": "http://runner.local/hook"}, "portal.E005"),
    ({"PORTAL_MIN_FREE_BYTES": "64MiB"}, "portal.E013"),  # the reserve's default is 64MiB
    ({"PORTAL_FREE_SPACE_RESERVE_BYTES": "2GiB"}, "portal.E013"),
    ({"PORTAL_STORAGE": "s3"}, "portal.E006"),
    ({"PORTAL_LOCAL_IN_PLACE_ASSEMBLY": "false"}, "portal.E014"),
]


@pytest.mark.parametrize(("variable", "value", "rule"), BAD_VALUES)
def test_bad_value_names_variable_and_rule(variable, value, rule, tmp_path):
    result = run_check({variable: value}, tmp_path=tmp_path)
    assert result.returncode == 2, result.stderr
    line = next(line for line in result.stderr.splitlines() if variable in line)
    assert rule in line
    assert "Traceback" not in result.stderr


def test_all_bad_values_reported_at_once(tmp_path):
    result = run_check({"PORTAL_CHUNK_SIZE": "abc", "PORTAL_LOG_LEVEL": "x"}, tmp_path=tmp_path)
    assert result.returncode == 2
    assert "PORTAL_CHUNK_SIZE='abc'" in result.stderr
    assert "PORTAL_LOG_LEVEL='x'" in result.stderr


def test_sizes_accept_units(tmp_path):
    result = run_check(
        {"PORTAL_CHUNK_SIZE": "4MiB", "PORTAL_MAX_FILE_SIZE": "2GB"}, tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("env", "code"), CROSS_FIELD)
def test_cross_field_rules_are_system_check_errors(env, code, tmp_path):
    result = run_check(env, tmp_path=tmp_path)
    assert result.returncode == 1
    assert code in result.stderr


def test_database_url_error_hides_credentials(tmp_path):
    result = run_check({"DATABASE_URL": "mysqlx://admin:hunter2@db/x"}, tmp_path=tmp_path)
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr
    assert "hunter2" not in result.stderr


def test_prod_without_secrets_fails_clearly(tmp_path):
    result = run_check({}, configuration="Prod", tmp_path=tmp_path)
    assert result.returncode == 2
    for variable in ("SECRET_KEY", "DATABASE_URL", "ALLOWED_HOSTS"):
        assert f"{variable}: required" in result.stderr


def test_prod_check_deploy_is_clean(tmp_path):
    env = {**PROD_ENV, "DATABASE_URL": f"sqlite:///{tmp_path}/prod.sqlite3"}
    result = run_check(
        env, "--deploy", "--fail-level", "WARNING", configuration="Prod", tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("variable", "value", "code", "reason"),
    [
        ("SECRET_KEY", "change-me-to-a-long-random-string", "portal.E010", "placeholder"),
        ("SECRET_KEY", "Zq8" * 10, "portal.E010", "fewer than 50"),
        ("SECRET_KEY", "ab" * 30, "portal.E010", "fewer than 8 different"),
        ("SECRET_KEY", "django-insecure-" + "x1y2z3w4" * 6, "portal.E010", "placeholder"),
        ("PORTAL_RUNNER_AUTH_SECRET", "change-me", "portal.E011", "placeholder"),
        ("PORTAL_RUNNER_AUTH_SECRET", "runner-secret", "portal.E011", "fewer than 32"),
    ],
)
def test_placeholder_or_short_secrets_fail_check_deploy(variable, value, code, reason, tmp_path):
    env = {**PROD_ENV, "DATABASE_URL": f"sqlite:///{tmp_path}/prod.sqlite3", variable: value}
    result = run_check(env, "--deploy", configuration="Prod", tmp_path=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    line = next(line for line in result.stderr.splitlines() if code in line)
    assert variable in line and reason in line
    assert value not in result.stderr  # the check names the variable, never the secret


@pytest.mark.parametrize("configuration", ["Dev", "Test"])
def test_check_clean_in_every_configuration(configuration, tmp_path):
    result = run_check({}, configuration=configuration, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr


def test_gunicorn_app_refuses_inconsistent_settings(tmp_path):
    env = {
        **PROD_ENV,
        "DATABASE_URL": f"sqlite:///{tmp_path}/prod.sqlite3",
        "PORTAL_CHUNK_SIZE": "128MiB",
        "PATH": "/usr/bin:/bin",
        "DJANGO_CONFIGURATION": "Prod",
        "PORTAL_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [PYTHON, "-c", "import boot.wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "portal.E001" in result.stderr


def test_gunicorn_refuses_bad_settings_with_one_record_and_no_traceback(tmp_path):
    env = {
        **PROD_ENV,
        "DATABASE_URL": f"sqlite:///{tmp_path}/prod.sqlite3",
        "PORTAL_CHUNK_SIZE": "abc",
        "PORTAL_CHUNK_SIZE_MAX": "1MiB",
        "PATH": "/usr/bin:/bin",
        "PORTAL_DATA_DIR": str(tmp_path),
        "PORT": "0",
        "WEB_CONCURRENCY": "3",
    }
    result = subprocess.run(
        [PYTHON, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    errors = [line for line in result.stdout.splitlines() if '"level": "ERROR"' in line]
    assert len(errors) == 1  # once, not once per worker
    assert "PORTAL_CHUNK_SIZE='abc'" in errors[0]
    assert "Booting worker" not in result.stdout
