"""Settings classes (``boot.settings``), built in this process from a fresh copy of the
module: what each configuration sets where the suite's own ``Test`` settings hide it."""

import os

import pytest

from boot import config as v
from boot.settings import BASE_DIR
from tests.settings_helpers import GIB, MIB, PROD, SETTINGS_FILE, build


def test_production_keeps_the_defaults_the_test_configuration_overrides(monkeypatch, tmp_path):
    """``Test`` turns the free-space floor, the drain and the chunk minimum off and quiets
    the logs: the suite never sees ``Base``'s own values, which ``Prod`` runs on."""
    s = build("Prod", monkeypatch, tmp_path, **PROD)
    assert (s["PORTAL_MIN_FREE_BYTES"], s["PORTAL_FREE_SPACE_RESERVE_BYTES"]) == (GIB, 64 * MIB)
    assert (s["PORTAL_CHUNK_SIZE_MIN"], s["PORTAL_DRAIN_SECONDS"]) == (256 * 1024, 10.0)
    assert (s["PORTAL_LOG_FORMAT"], s["PORTAL_LOG_LEVEL"]) == ("json", "info")
    assert s["LOGGING"]["root"]["level"] == "INFO"
    assert s["LOGGING"]["handlers"]["stdout"]["formatter"] == "json"
    assert s["STATIC_ROOT"] == str(BASE_DIR / "var" / "static")
    assert s["DEBUG"] is False
    assert s["ALLOWED_HOSTS"] == ["portal.example.com", "files.example.com"]
    assert "MD5" not in s["PASSWORD_HASHERS"][0]


def test_without_a_data_directory_the_default_is_the_checkouts_var_from_any_directory(
    monkeypatch, tmp_path
):
    """cron runs ``manage.py`` from the home directory, gunicorn from the checkout: both
    must find the same SQLite file and storage roots, so the default is absolute."""
    monkeypatch.chdir(tmp_path)
    found = build("Prod", monkeypatch, tmp_path, PORTAL_DATA_DIR=None, **PROD)
    assert found["PORTAL_DATA_DIR"] == str(SETTINGS_FILE.parent.parent / "var")


def test_production_is_https_only_and_trusts_a_proxy_only_when_told(monkeypatch, tmp_path):
    """Prod redirects to HTTPS (probes exempt), sends HSTS for a year with subdomains and
    preload, secure cookies; X-Forwarded-Proto counts only with ``PORTAL_BEHIND_PROXY``."""
    s = build("Prod", monkeypatch, tmp_path, **PROD)
    assert s["SECURE_SSL_REDIRECT"] is True
    assert s["SECURE_REDIRECT_EXEMPT"] == ["^health$", "^ready$"]
    assert (s["SECURE_HSTS_SECONDS"], s["SECURE_HSTS_INCLUDE_SUBDOMAINS"]) == (31536000, True)
    assert s["SECURE_HSTS_PRELOAD"] is True
    assert (s["SESSION_COOKIE_SECURE"], s["CSRF_COOKIE_SECURE"]) == (True, True)
    assert s["STORAGES"]["staticfiles"] == {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
    }
    assert s["SECURE_PROXY_SSL_HEADER"] is None
    assert s["LOGGING"]["filters"]["gunicorn_access"]["behind_proxy"] is False
    proxied = build("Prod", monkeypatch, tmp_path, **PROD, PORTAL_BEHIND_PROXY="true")
    assert proxied["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    assert proxied["LOGGING"]["filters"]["gunicorn_access"]["behind_proxy"] is True


def test_production_reads_each_security_switch_from_the_environment(monkeypatch, tmp_path):
    """An operator behind a TLS-terminating proxy that redirects itself turns the redirect
    and HSTS off by variable; the values are read, not fixed."""
    s = build(
        "Prod", monkeypatch, tmp_path, **PROD, SECURE_SSL_REDIRECT="no", SECURE_HSTS_SECONDS="0"
    )
    assert (s["SECURE_SSL_REDIRECT"], s["SECURE_HSTS_SECONDS"]) == (False, 0)


def test_production_names_every_missing_required_value(monkeypatch, tmp_path):
    """Prod without its three required variables fails listing each one, not the first."""
    with pytest.raises(v.SettingsError) as refused:
        build("Prod", monkeypatch, tmp_path, ALLOWED_HOSTS=" , ")
    assert sorted(refused.value.problems) == [
        "ALLOWED_HOSTS: required in this configuration, but not set",
        "DATABASE_URL: required in this configuration, but not set",
        "SECRET_KEY: required in this configuration, but not set",
    ]


def test_development_logs_for_a_person_and_serves_no_static_root(monkeypatch, tmp_path):
    """Dev: debug on, a fixed insecure key, console logs at INFO, the loopback hosts, no
    STATIC_ROOT, and both local storage roots made under ``PORTAL_DATA_DIR``."""
    s = build("Dev", monkeypatch, tmp_path)
    assert s["DEBUG"] is True
    assert s["SECRET_KEY"] == "dev-insecure-key-do-not-use-in-production"
    assert s["LOGGING"]["handlers"]["stdout"]["formatter"] == "console"
    assert s["LOGGING"]["root"]["level"] == "INFO"
    assert s["STATIC_ROOT"] is None
    assert s["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1", "[::1]"]
    assert s["CSRF_TRUSTED_ORIGINS"] == []
    assert s["STORAGES"]["staticfiles"]["BACKEND"].startswith("django.contrib.staticfiles")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final", "temp"]


def test_development_on_s3_makes_no_local_roots(monkeypatch, tmp_path):
    """With ``PORTAL_STORAGE=s3`` nothing is written under ``PORTAL_DATA_DIR`` but the
    SQLite file's directory: the local roots would be unused litter."""
    data = tmp_path / "data"
    build("Dev", monkeypatch, data, PORTAL_STORAGE="s3", AWS_STORAGE_BUCKET_NAME="ingest")
    assert sorted(p.name for p in data.iterdir()) == []


def test_development_refuses_to_start_when_its_roots_cannot_be_made(monkeypatch, tmp_path):
    """The roots' problem is raised by Dev itself (after ``Base`` raised none): a
    development server never starts on a storage root it could not make."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    db = tmp_path / "db" / "portal.sqlite3"
    with pytest.raises(v.SettingsError) as refused:
        build("Dev", monkeypatch, blocker, DATABASE_URL=f"sqlite:///{db}")
    assert [p.split(": ")[1] for p in refused.value.problems] == [
        f"cannot create the directory {str(blocker / 'temp')!r} (Not a directory)",
        f"cannot create the directory {str(blocker / 'final')!r} (Not a directory)",
    ]


def test_the_test_configuration_is_fast_quiet_and_undrained(monkeypatch, tmp_path):
    """Test: MD5 hashing, WARNING logs, no drain, no free-space floor, one-byte chunks, and
    a test SQLite file of this process's own beside the database."""
    s = build("Test", monkeypatch, tmp_path)
    assert s["PASSWORD_HASHERS"] == ["django.contrib.auth.hashers.MD5PasswordHasher"]
    assert s["LOGGING"]["root"]["level"] == "WARNING"
    assert s["LOGGING"]["handlers"]["stdout"]["formatter"] == "json"
    assert (s["PORTAL_DRAIN_SECONDS"], s["PORTAL_CHUNK_SIZE_MIN"]) == (0.0, 1)
    assert (s["PORTAL_MIN_FREE_BYTES"], s["PORTAL_FREE_SPACE_RESERVE_BYTES"]) == (0, 0)
    assert s["STATIC_ROOT"] is None
    db = s["DATABASES"]["default"]
    assert db["NAME"] == str(tmp_path / "portal.sqlite3")
    assert db["TEST"] == {"NAME": f"{tmp_path / 'portal.sqlite3'}.test-{os.getpid()}"}
    on_pg = build("Test", monkeypatch, tmp_path, DATABASE_URL=PROD["DATABASE_URL"])
    assert "TEST" not in on_pg["DATABASES"]["default"]


def test_the_test_configuration_still_bounds_what_it_reads(monkeypatch, tmp_path):
    """Test's own values keep their bounds: a drain below 0 or a chunk minimum of 0 is
    refused, as in every other configuration."""
    with pytest.raises(v.SettingsError) as refused:
        build("Test", monkeypatch, tmp_path, PORTAL_CHUNK_SIZE_MIN="0", PORTAL_DRAIN_SECONDS="-1")
    assert sorted(refused.value.problems) == [
        "PORTAL_CHUNK_SIZE_MIN='0': must be at least 1",
        "PORTAL_DRAIN_SECONDS='-1': must be at least 0",
    ]


def test_a_new_load_forgets_the_problems_of_an_earlier_one(monkeypatch, tmp_path):
    """Each load starts from no problems: one left by an earlier, failed load (a test, a
    reload) must not make valid settings fail."""
    v.PROBLEMS.append("PORTAL_CHUNK_SIZE='abc': left over from an earlier load")
    assert build("Dev", monkeypatch, tmp_path)["DEBUG"] is True


def test_development_on_s3_still_refuses_a_bad_value(monkeypatch, tmp_path):
    """Dev's own post-setup (the local roots) must not replace Base's: on S3, where no
    root is made, a bad value still stops the load."""
    with pytest.raises(v.SettingsError) as refused:
        build("Dev", monkeypatch, tmp_path, PORTAL_STORAGE="s3", PORTAL_CHUNK_SIZE="abc")
    assert refused.value.problems == [
        "PORTAL_CHUNK_SIZE='abc': must be a size in bytes such as 8388608, 8MiB or 5GB"
    ]
