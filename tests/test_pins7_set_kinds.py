"""The kind of value each setting of ``boot.settings`` is: a bad text for each refused by
its own rule while the settings load, a good one read as meant (a setting declared as plain
text would take anything, and fail later at the first use)."""

import pytest

from boot import config as v
from tests.settings_helpers import build

BAD = {
    "AWS_STORAGE_BUCKET_NAME": "ingest files",
    "AWS_S3_REGION_NAME": "-eu-central-1",
    "AWS_S3_ENDPOINT_URL": "minio.internal:9000",
    "PORTAL_RUNNER_ENDPOINT": "ftp://runner.internal/hook",
    "PORTAL_CORS_ALLOWED_ORIGINS": "https://app.example.com/upload",
    "PORTAL_DRAIN_FILE": "run/drain",
    "PORTAL_STATIC_ROOT": "static",
    "PORTAL_LOG_FORMAT": "xml",
}


def test_each_setting_refuses_what_is_not_its_kind(monkeypatch, tmp_path):
    """Every bad value is named in one error, each with its variable: bucket, region,
    URLs, origins, absolute paths and the log format all have rules."""
    with pytest.raises(v.SettingsError) as refused:
        build("Base", monkeypatch, tmp_path, **BAD)
    named = sorted(problem.split("=", 1)[0] for problem in refused.value.problems)
    assert named == sorted(BAD)
    for problem in refused.value.problems:
        variable = problem.split("=", 1)[0]
        assert problem.startswith(f"{variable}={BAD[variable]!r}: "), problem


def test_a_region_is_letters_digits_and_inner_hyphens(monkeypatch, tmp_path):
    """``eu-central-1`` is a region; ``eu-central-`` (a cut paste) is refused by the rule."""
    assert (
        build("Base", monkeypatch, tmp_path, AWS_S3_REGION_NAME="eu-central-1")[
            "AWS_S3_REGION_NAME"
        ]
        == "eu-central-1"
    )
    with pytest.raises(v.SettingsError) as refused:
        build("Base", monkeypatch, tmp_path, AWS_S3_REGION_NAME="eu-central-")
    assert refused.value.problems == [
        "AWS_S3_REGION_NAME='eu-central-': must be a region name such as eu-central-1"
    ]


def test_a_bucket_may_hold_dots_hyphens_and_underscores(monkeypatch, tmp_path):
    """botocore's own rule: ``ingest_files.v2-eu`` is a name S3-compatible services take."""
    s = build("Base", monkeypatch, tmp_path, AWS_STORAGE_BUCKET_NAME="ingest_files.v2-eu")
    assert s["AWS_STORAGE_BUCKET_NAME"] == "ingest_files.v2-eu"


def test_lists_are_read_from_the_environment(monkeypatch, tmp_path):
    """CSRF_TRUSTED_ORIGINS and the CORS origins are comma-separated variables, not
    fixed: an admin behind a proxy host needs its origin trusted."""
    s = build(
        "Base",
        monkeypatch,
        tmp_path,
        CSRF_TRUSTED_ORIGINS="https://admin.example.com, https://ops.example.com",
        PORTAL_CORS_ALLOWED_ORIGINS="https://app.example.com",
    )
    assert s["CSRF_TRUSTED_ORIGINS"] == ["https://admin.example.com", "https://ops.example.com"]
    assert s["PORTAL_CORS_ALLOWED_ORIGINS"] == ["https://app.example.com"]


def test_request_bodies_are_never_buffered_past_two_mib_and_times_are_utc(monkeypatch, tmp_path):
    """Part bodies stream: Django may hold at most 2 MiB of a form or file in memory; times
    are aware UTC (the TTL and grace windows compare them)."""
    s = build("Base", monkeypatch, tmp_path)
    limits = (s["DATA_UPLOAD_MAX_MEMORY_SIZE"], s["FILE_UPLOAD_MAX_MEMORY_SIZE"])
    assert limits == (2 * 1024 * 1024, 2 * 1024 * 1024)
    assert (s["USE_TZ"], s["TIME_ZONE"]) == (True, "UTC")
