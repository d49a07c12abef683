"""What the settings classes hand the storage adapters and the database (``boot.settings``:
``STORAGES``, ``DATABASES``), read from the options themselves for values the suite's own
storage (moto, one local root) would never tell apart."""

import os

import pytest

from boot import config as v
from tests.settings_helpers import MIB, PROD, build

S3 = {
    "PORTAL_STORAGE": "s3",
    "AWS_STORAGE_BUCKET_NAME": "ingest-files",
    "AWS_S3_REGION_NAME": "eu-central-1",
    "AWS_S3_CONNECT_TIMEOUT_SECONDS": "1.5",
    "AWS_S3_READ_TIMEOUT_SECONDS": "7.5",
    "AWS_S3_MAX_ATTEMPTS": "5",
}


def test_s3_storages_carry_bucket_prefix_timeouts_retries_and_a_bounded_transfer(
    monkeypatch, tmp_path
):
    """Each S3 option reaches the adapter: temp and final prefixes (default = final), the
    two timeouts apart, standard retries, signed URLs, no ACL, at most 4 x 8 MiB in memory
    and an 8 MiB part sent as one PutObject."""
    s = build(
        "Prod",
        monkeypatch,
        tmp_path,
        **PROD,
        **S3,
        AWS_S3_ENDPOINT_URL="http://minio.internal:9000",
        AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
        AWS_SECRET_ACCESS_KEY="s3cr3t-key",
    )
    storages = s["STORAGES"]
    temp, final = storages["portal_temp"]["OPTIONS"], storages["portal_final"]["OPTIONS"]
    assert storages["default"] is storages["portal_final"]
    assert {storages[name]["BACKEND"] for name in ("portal_temp", "portal_final")} == {
        "portal.storage.s3_backend.S3Storage"
    }
    assert (temp["location"], final["location"]) == ("temp", "final")
    assert {
        key: final[key] for key in final if key not in ("transfer_config", "client_config")
    } == {
        "bucket_name": "ingest-files",
        "location": "final",
        "endpoint_url": "http://minio.internal:9000",
        "region_name": "eu-central-1",
        "access_key": "AKIDEXAMPLE",
        "secret_key": "s3cr3t-key",
        "file_overwrite": True,
        "default_acl": None,
        "querystring_auth": True,
    }
    client = final["client_config"]
    assert (client.connect_timeout, client.read_timeout) == (1.5, 7.5)
    assert client.retries == {"max_attempts": 5, "mode": "standard"}
    assert (client.s3, client.signature_version) == ({"addressing_style": "path"}, "s3v4")
    transfer = final["transfer_config"]
    assert (transfer.multipart_threshold, transfer.multipart_chunksize) == (8 * MIB + 1, 8 * MIB)
    assert (transfer.max_concurrency, transfer.max_in_memory_upload_chunks) == (4, 4)


def test_s3_on_aws_leaves_endpoint_keys_and_addressing_to_boto3(monkeypatch, tmp_path):
    """Without an endpoint or keys the adapter gets None (boto3's own chain and AWS's
    virtual-host addressing), never empty strings that boto3 would use as given."""
    s = build("Prod", monkeypatch, tmp_path, **PROD, **S3)
    options = s["STORAGES"]["portal_temp"]["OPTIONS"]
    assert (options["endpoint_url"], options["access_key"], options["secret_key"]) == (
        None,
        None,
        None,
    )
    assert options["client_config"].s3 == {"addressing_style": "auto"}


def test_s3_defaults_are_short_timeouts_and_two_attempts(monkeypatch, tmp_path):
    """Out of the box an S3 call gives up after 2 s to connect, 10 s to read, 2 attempts,
    in us-east-1: a dead endpoint fails a request fast, not after minutes."""
    s = build("Dev", monkeypatch, tmp_path, PORTAL_STORAGE="s3", AWS_STORAGE_BUCKET_NAME="b")
    options = s["STORAGES"]["portal_final"]["OPTIONS"]
    client = options["client_config"]
    assert (client.connect_timeout, client.read_timeout) == (2.0, 10.0)
    assert (client.retries["max_attempts"], options["region_name"]) == (2, "us-east-1")


def test_local_storages_are_two_roots_under_the_data_dir(monkeypatch, tmp_path):
    """Local disk: ``temp`` and ``final`` under ``PORTAL_DATA_DIR``, overwrite allowed, and
    Django's default storage is the final one (links and admin downloads read it)."""
    s = build("Prod", monkeypatch, tmp_path, **PROD)
    storages = s["STORAGES"]
    assert storages["default"] == storages["portal_final"] != storages["portal_temp"]
    assert storages["portal_temp"] == {
        "BACKEND": "portal.storage.local.LocalStorage",
        "OPTIONS": {"location": str(tmp_path / "temp"), "allow_overwrite": True},
    }
    assert storages["portal_final"]["OPTIONS"]["location"] == str(tmp_path / "final")


def test_sqlite_waits_twenty_seconds_takes_write_locks_first_and_uses_wal(monkeypatch, tmp_path):
    """SQLite with several processes: a 20 s busy timeout, BEGIN IMMEDIATE (no deadlock
    between two readers upgrading), WAL with NORMAL sync; no connect_timeout (PostgreSQL's)."""
    s = build("Dev", monkeypatch, tmp_path)
    database = s["DATABASES"]["default"]
    assert database["OPTIONS"] == {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    assert (database["CONN_MAX_AGE"], database["CONN_HEALTH_CHECKS"]) == (60, True)


def test_postgresql_takes_the_connect_timeout_and_no_sqlite_options(monkeypatch, tmp_path):
    """``DATABASE_CONNECT_TIMEOUT_SECONDS`` (default 3) is libpq's connect_timeout; no
    SQLite pragma reaches psycopg, and no SQLite directory is made."""
    default = build("Prod", monkeypatch, tmp_path, **PROD)
    assert default["DATABASES"]["default"]["OPTIONS"] == {"connect_timeout": 3}
    s = build("Prod", monkeypatch, tmp_path, **PROD, DATABASE_CONNECT_TIMEOUT_SECONDS="7")
    assert s["DATABASES"]["default"]["OPTIONS"] == {"connect_timeout": 7}
    assert s["DATABASES"]["default"]["HOST"] == "db.internal"


def test_an_unreadable_database_url_fails_the_load_naming_its_scheme(monkeypatch, tmp_path):
    """A DATABASE_URL that names no supported database is one problem of the load (the
    dummy engine never reaches a request)."""
    with pytest.raises(v.SettingsError) as refused:
        build("Dev", monkeypatch, tmp_path, DATABASE_URL="mysql://u:pw@db/portal")
    [problem] = refused.value.problems
    assert problem.startswith("DATABASE_URL (scheme 'mysql'): not a supported database; ")


def test_a_database_directory_that_cannot_be_made_names_database_url(monkeypatch, tmp_path):
    """The SQLite file's directory comes from DATABASE_URL when it is set: the problem names
    that variable and says it is the database directory, not ``PORTAL_DATA_DIR``."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    data = tmp_path / "data"
    with pytest.raises(v.SettingsError) as refused:
        build("Test", monkeypatch, data, DATABASE_URL=f"sqlite:///{blocker}/db/portal.sqlite3")
    assert refused.value.problems == [
        f"DATABASE_URL='sqlite:///{blocker}/db/portal.sqlite3': cannot create the database "
        f"directory {str(blocker / 'db')!r} (Not a directory)"
    ]
    with pytest.raises(v.SettingsError) as refused:
        build("Test", monkeypatch, blocker)
    assert refused.value.problems == [
        f"PORTAL_DATA_DIR={str(blocker)!r}: cannot create the database directory "
        f"{str(blocker)!r} (File exists)"
    ]


def test_an_sqlite_uri_or_memory_database_makes_no_directory(monkeypatch, tmp_path):
    """``file:`` URIs and ``:memory:`` are no paths: nothing is created for them (a
    ``file:db`` directory would appear in the working directory)."""
    from boot import settings as boot_settings

    monkeypatch.chdir(tmp_path)
    boot_settings._make_database_dir("file:db/portal.sqlite3?mode=memory", None)
    boot_settings._make_database_dir(":memory:", None)
    assert os.listdir(tmp_path) == []
    boot_settings._make_database_dir("db/portal.sqlite3", None)
    assert os.listdir(tmp_path) == ["db"]
