"""Every settings variable of docs/configuration.md, given garbage.

``tests/test_settings.py`` checks one bad value per run for the common variables and the
cross-field rules. Here every variable of that table gets several garbage values
(not a number, out of range, absurdly large, the wrong kind of text), in few subprocesses:
one ``manage.py check`` per round holds a bad value for every variable at once, and each
must be named on its own line of the error, with exit code 2 and no traceback. Variables
that only mean something in a context (``Prod``, S3 storage, a runner endpoint) or whose
garbage is a cross-field rule get runs of their own. A variable added to the table
without garbage here fails ``test_every_documented_variable_is_covered``.
"""

import re
import subprocess

import pytest

from tests.conftest import PYTHON, ROOT

pytestmark = pytest.mark.reliability

# Garbage that fails while the settings load (exit 2, "  - VARIABLE=... : rule").
LOAD_TIME = {
    "DATABASE_URL": ["mysqlx://admin:hunter2@db/x", "postgres://u@h:notaport/db", "garbage"],
    "DATABASE_CONNECT_TIMEOUT_SECONDS": ["soon", "0", "99999999"],
    "PORTAL_STORAGE": ["ftp", "S4", ""],
    "AWS_STORAGE_BUCKET_NAME": ["Not A Bucket!", "a/b", "ünïcode"],
    "AWS_S3_ENDPOINT_URL": ["minio:9000", "ftp://minio", "http://"],
    "AWS_S3_REGION_NAME": ["not a region!", "-eu", "eu_central_1"],
    "AWS_S3_CONNECT_TIMEOUT_SECONDS": ["-1", "fast", "1e9"],
    "AWS_S3_READ_TIMEOUT_SECONDS": ["0", "nan", "inf"],
    "AWS_S3_MAX_ATTEMPTS": ["0", "two", "1000000"],
    "PORTAL_MAX_FILE_SIZE": ["lots", "-5", "99999TB"],
    "PORTAL_CHUNK_SIZE": ["abc", "0", "6GiB"],
    "PORTAL_CHUNK_SIZE_MIN": ["1.5MB", "0", "1 parsec"],
    "PORTAL_CHUNK_SIZE_MAX": ["8 parsecs", "-1", "10TiB"],
    "PORTAL_SESSION_TTL_HOURS": ["soon", "-1", "1e9"],
    "PORTAL_ORPHAN_GRACE_MINUTES": ["nan", "x", "1e12"],
    "PORTAL_FAILED_SESSION_RETENTION_DAYS": ["x", "0", "1e9"],
    "PORTAL_CLEANUP_BATCH_SIZE": ["0", "1e3", "99999999"],
    "PORTAL_OUTBOX_BASE_DELAY_SECONDS": ["-3", "later", "1e300"],
    "PORTAL_OUTBOX_MAX_DELAY_SECONDS": ["inf", "0", "1e300"],
    "PORTAL_OUTBOX_MAX_ATTEMPTS": ["many", "0", "1" + "0" * 30],
    "PORTAL_OUTBOX_RETENTION_DAYS": ["", "-1", "1e9"],
    "PORTAL_RUNNER_ENDPOINT": ["ftp://runner", "not a url", "http://"],
    "PORTAL_RUNNER_TIMEOUT_SECONDS": ["0", "ten", "1e300"],
    "PORTAL_HEALTH_CHECK_TIMEOUT_SECONDS": ["fast", "-1", "1e300"],
    "PORTAL_READY_CACHE_SECONDS": ["-1", "x", "1e300"],
    "PORTAL_LOG_FORMAT": ["xml", "JSONL", ""],
    "PORTAL_LOG_LEVEL": ["loud", "10", "trace"],
}
ROUNDS = 3

# Garbage that needs a context: (variable, environment, configuration, exit code, text).
IN_CONTEXT = [
    ("DJANGO_CONFIGURATION", {"DJANGO_CONFIGURATION": "Nope"}, None, 2, "must be one of"),
    ("DJANGO_CONFIGURATION", {"DJANGO_CONFIGURATION": "prod"}, None, 2, "must be one of"),
    ("DJANGO_CONFIGURATION", {"DJANGO_CONFIGURATION": ""}, None, 2, "must be one of"),
    ("PORTAL_DATA_DIR", {"PORTAL_DATA_DIR": "/proc/portal-nope"}, "Dev", 2, "cannot create"),
    ("PORTAL_DATA_DIR", {"PORTAL_DATA_DIR": "/dev/null"}, "Dev", 2, "cannot create"),
    ("CSRF_TRUSTED_ORIGINS", {"CSRF_TRUSTED_ORIGINS": "portal.example.com"}, "Dev", 1, "scheme"),
    (
        "PORTAL_RUNNER_AUTH_SECRET",
        {"PORTAL_RUNNER_ENDPOINT": "https://runner/hook", "PORTAL_RUNNER_AUTH_SECRET": "  "},
        "Dev",
        1,
        "portal.E005",
    ),
    (
        "AWS_ACCESS_KEY_ID",
        {"PORTAL_STORAGE": "s3", "AWS_STORAGE_BUCKET_NAME": "b", "AWS_ACCESS_KEY_ID": "AKIA1"},
        "Dev",
        1,
        "portal.E007",
    ),
    (
        "AWS_SECRET_ACCESS_KEY",
        {"PORTAL_STORAGE": "s3", "AWS_STORAGE_BUCKET_NAME": "b", "AWS_SECRET_ACCESS_KEY": "s3cr3t"},
        "Dev",
        1,
        "portal.E007",
    ),
]
# Secrets that load but are too weak: refused by ``check --deploy`` (exit 1, the check's id).
DEPLOY_GARBAGE = {
    "PORTAL_METRICS_TOKEN": [
        ("metrics", "portal.E012"),
        ("changeme-changeme-changeme-changeme", "portal.E012"),
        ("x" * 64, "portal.E012"),
    ],
}
# Prod: required values left blank and a bad boolean, all in one run.
PROD_GARBAGE = {
    "SECRET_KEY": ("   ", "required"),
    "DATABASE_URL": ("", "required"),
    "ALLOWED_HOSTS": (" , ,", "required"),
    "SECURE_SSL_REDIRECT": ("maybe", "must be true or false"),
    "SECURE_HSTS_SECONDS": ("a year", "must be a whole number"),
}


def run_check(env, configuration, tmp_path):
    base = {"PATH": "/usr/bin:/bin", "PORTAL_DATA_DIR": str(tmp_path)}
    if configuration is not None:
        base["DJANGO_CONFIGURATION"] = configuration
    return subprocess.run(
        [PYTHON, "manage.py", "check"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def problem_lines(stderr):
    """``{variable: line}`` of a ``Configuration error:`` report."""
    lines = {}
    for line in stderr.splitlines():
        match = re.match(r"  - ([A-Z][A-Z0-9_]*)[=:( ]", line)
        if match:
            lines[match.group(1)] = line
    return lines


def documented_variables():
    """The variables of docs/configuration.md's table (first column, in backticks)."""
    section = (ROOT / "docs" / "configuration.md").read_text()
    names = set()
    for row in section.splitlines():
        if row.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1]))
    return names


def test_every_documented_variable_is_covered():
    covered = set(LOAD_TIME) | {v for v, *_ in IN_CONTEXT} | set(PROD_GARBAGE)
    covered |= set(DEPLOY_GARBAGE)
    documented = documented_variables()
    assert len(documented) >= 30
    assert documented - covered == set()


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_garbage_in_every_variable_at_once_names_each(round_, tmp_path):
    env = {name: values[round_ % len(values)] for name, values in LOAD_TIME.items()}
    result = run_check(env, "Dev", tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Configuration error:\n")
    named = problem_lines(result.stderr)
    assert set(named) == set(LOAD_TIME), result.stderr
    for name, line in named.items():
        assert line.rstrip() != f"  - {name}", "every problem states its rule"
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "env", "configuration", "code", "text"),
    IN_CONTEXT,
    ids=[f"{case[0]}={next(iter(case[1].values()))!r}" for case in IN_CONTEXT],
)
def test_garbage_in_context_names_the_variable(variable, env, configuration, code, text, tmp_path):
    result = run_check(env, configuration, tmp_path)
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    line = next(line for line in result.stderr.splitlines() if variable in line)
    assert text in line or text in result.stderr


def test_prod_garbage_names_every_variable(tmp_path):
    env = {name: value for name, (value, _) in PROD_GARBAGE.items()}
    result = run_check(env, "Prod", tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    named = problem_lines(result.stderr)
    for name, (_, rule) in PROD_GARBAGE.items():
        assert rule in named[name], result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "check_id"),
    [
        (name, value, check_id)
        for name, cases in DEPLOY_GARBAGE.items()
        for value, check_id in cases
    ],
)
def test_weak_secrets_fail_check_deploy_unprinted(variable, value, check_id, tmp_path):
    from tests.test_settings import PROD_ENV

    env = {**PROD_ENV, "DATABASE_URL": f"sqlite:///{tmp_path}/p.sqlite3", variable: value}
    base = {
        "PATH": "/usr/bin:/bin",
        "PORTAL_DATA_DIR": str(tmp_path),
        "DJANGO_CONFIGURATION": "Prod",
    }
    result = subprocess.run(
        [PYTHON, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    line = next(line for line in result.stderr.splitlines() if check_id in line)
    assert variable in line and value not in result.stdout + result.stderr


def test_bounds_accept_their_limits(tmp_path):
    """The upper bounds refuse only absurd values: the limits themselves pass."""
    env = {
        "PORTAL_MAX_FILE_SIZE": "5TiB",
        "PORTAL_CHUNK_SIZE_MAX": "5GiB",
        "PORTAL_SESSION_TTL_HOURS": "8760",
        "PORTAL_FAILED_SESSION_RETENTION_DAYS": "36500",
        "PORTAL_OUTBOX_MAX_DELAY_SECONDS": "31536000",
        "PORTAL_CLEANUP_BATCH_SIZE": "10000",
        "AWS_S3_REGION_NAME": "eu-central-1",
        "AWS_STORAGE_BUCKET_NAME": "my.bucket-name_1",
    }
    result = run_check(env, "Dev", tmp_path)
    assert result.returncode == 0, result.stderr
