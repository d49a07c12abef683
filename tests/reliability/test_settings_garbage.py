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
# Each round gives every variable one of its values: huge, negative, NaN, infinity, empty,
# unicode, the wrong kind of text, a wrong scheme, a bad port, an unsupported database.
HUGE = "9" * 40
LOAD_TIME = {
    "DATABASE_URL": [
        "mysqlx://admin:hunter2@db/x",
        "postgres://u@h:notaport/db",
        "garbage",
        "mysql://admin:hunter2@db/x",
        "postgres://u@h:99999/db",
        "redis://cache:6379/0",
    ],
    "DATABASE_CONNECT_TIMEOUT_SECONDS": ["soon", "0", "99999999", "-1", HUGE, "\u0969"],
    "PORTAL_STORAGE": ["ftp", "S4", "", "l\u043ecal", "s3://bucket", "null"],
    "AWS_STORAGE_BUCKET_NAME": ["Not A Bucket!", "a/b", "ünïcode", "x" * 300, "a b", "../up"],
    "AWS_S3_ENDPOINT_URL": [
        "minio:9000",
        "ftp://minio",
        "http://",
        "http://minio:notaport",
        "http://minio:0",
        "http://mïnio:9000",
    ],
    "AWS_S3_REGION_NAME": ["not a region!", "-eu", "eu_central_1", "ü", "x" * 80, "eu-"],
    "AWS_S3_CONNECT_TIMEOUT_SECONDS": ["-1", "fast", "1e9", "nan", "inf", ""],
    "AWS_S3_READ_TIMEOUT_SECONDS": ["0", "nan", "inf", "-inf", HUGE, "½"],
    "AWS_S3_MAX_ATTEMPTS": ["0", "two", "1000000", "-1", HUGE, "1.5"],
    "PORTAL_MAX_FILE_SIZE": ["lots", "-5", "99999TB", HUGE, "1e9", "5 TiB and more"],
    "PORTAL_CHUNK_SIZE": ["abc", "0", "6GiB", "-8MiB", HUGE, "8 MiB extra"],
    "PORTAL_CHUNK_SIZE_MIN": ["1.5MB", "0", "1 parsec", "", HUGE, "nan"],
    "PORTAL_CHUNK_SIZE_MAX": ["8 parsecs", "-1", "10TiB", "inf", HUGE, "\uff16\uff14MiB"],
    "PORTAL_SESSION_TTL_HOURS": ["soon", "-1", "1e9", "nan", "inf", ""],
    "PORTAL_ORPHAN_GRACE_MINUTES": ["nan", "x", "1e12", "-inf", "0", HUGE],
    "PORTAL_FAILED_SESSION_RETENTION_DAYS": ["x", "0", "1e9", "inf", "-1", ""],
    "PORTAL_CLEANUP_BATCH_SIZE": ["0", "1e3", "99999999", "-5", HUGE, ""],
    "PORTAL_OUTBOX_BASE_DELAY_SECONDS": ["-3", "later", "1e300", "nan", "inf", ""],
    "PORTAL_OUTBOX_MAX_DELAY_SECONDS": ["inf", "0", "1e300", "-1", "nan", "x"],
    "PORTAL_OUTBOX_MAX_ATTEMPTS": ["many", "0", "1" + "0" * 30, "-1", "2.5", ""],
    "PORTAL_OUTBOX_RETENTION_DAYS": ["", "-1", "1e9", "nan", "inf", "ten"],
    "PORTAL_RUNNER_ENDPOINT": [
        "ftp://runner",
        "not a url",
        "http://",
        "http://runner:notaport/hook",
        "http://runner:70000/hook",
        "http://runner/hoöks",
    ],
    "PORTAL_RUNNER_TIMEOUT_SECONDS": ["0", "ten", "1e300", "nan", "inf", "-1"],
    "PORTAL_HEALTH_CHECK_TIMEOUT_SECONDS": ["fast", "-1", "1e300", "nan", "inf", "0"],
    "PORTAL_READY_CACHE_SECONDS": ["-1", "x", "1e300", "nan", "inf", "-inf"],
    "PORTAL_MAX_OPEN_SESSIONS_PER_USER": ["-1", "many", HUGE, "1.5", "nan", "∞"],
    "PORTAL_MAX_PENDING_BYTES_PER_USER": ["-1", "lots", HUGE, "1 zettabyte", "inf", "0x10"],
    "PORTAL_MIN_FREE_BYTES": ["-1GiB", "some", HUGE, "nan", "2 PiB", "1e9"],
    "PORTAL_FREE_SPACE_RESERVE_BYTES": ["-1MiB", "some", HUGE, "nan", "2 PiB", "1e9"],
    "PORTAL_FINALIZE_WAIT_SECONDS": ["-1", "soon", HUGE, "nan", "inf", "1e9"],
    "PORTAL_S3_COPY_ASSEMBLY": ["maybe", "2", "copy", "nope", "\u2713", "on please"],
    "PORTAL_DRAIN_SECONDS": ["-1", "soon", HUGE, "nan", "inf", "1e9"],
    "PORTAL_BEHIND_PROXY": ["maybe", "2", "tru", "ja", "yes please", "\u2713"],
    "PORTAL_STATIC_ROOT": ["static", "var/static", "./s", "~/s", "s t", "..\\x"],
    "PORTAL_DRAIN_FILE": ["drain", "var/drain", "./drain", "~/drain", "drain file", "..\\x"],
    "PORTAL_CORS_ALLOWED_ORIGINS": [
        "app.example.com",
        "ftp://app.example.com",
        "https://app.example.com/path",
        "*",
        "https://app.example.com:99999",
        "https://app.example.com:0",
    ],
    "PORTAL_LOG_FORMAT": ["xml", "JSONL", "", "jsön", "text", "json,console"],
    "PORTAL_LOG_LEVEL": ["loud", "10", "trace", "", "ïnfo", "warn"],
}
ROUNDS = 6

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
    if round_ == 3:  # the unsupported database is named, not attempted (no driver traceback)
        assert "not a supported database" in named["DATABASE_URL"]


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
    from tests.settings_helpers import PROD_ENV

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
