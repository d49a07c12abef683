"""Pins for the ops area (issue #31, second round), in-process: a file lock gives back its
descriptor (``portal.locks``), the scrape's own database gauges (``portal.metrics``), the
log level and the S3 bucket rule of the settings (``boot.settings``)."""

import logging
import os

import pytest
from django.db import OperationalError, close_old_connections, connection

from boot import settings as boot_settings
from boot.logging import build_logging
from portal import locks
from portal.metrics import collector
from tests.metrics_helpers import TOKEN, names, scrape, value


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def test_file_locks_give_their_descriptor_back(settings, tmp_path):
    if connection.vendor == "postgresql":
        pytest.skip("file locks are SQLite's")
    settings.PORTAL_DATA_DIR = str(tmp_path)
    with locks.hold("warm-up"):
        pass
    before = open_fds()
    for n in range(20):
        with locks.hold(f"range:{n % 3}"):
            pass
    assert open_fds() == before
    assert not list((tmp_path / "locks").iterdir())


def test_a_scrape_reports_how_it_read_the_database(db, settings):
    settings.PORTAL_METRICS_TOKEN = TOKEN
    collector.collector.clear()
    from django.test import Client

    samples = scrape(Client())
    assert value(samples, "portal_metrics_database_up") == 1
    assert "portal_metrics_database_query_seconds" in names(samples)
    assert value(samples, "portal_metrics_database_query_seconds") >= 0


@pytest.mark.parametrize("level", ["debug", "warning", "error"])
def test_the_log_level_setting_reaches_the_root_and_the_portal_loggers(level):
    config = boot_settings.Base()
    config.PORTAL_LOG_LEVEL = level
    config.PORTAL_LOG_FORMAT = "console"
    logging_config = config.LOGGING
    assert logging_config == build_logging(fmt="console", level=level, behind_proxy=False)
    assert logging_config["root"]["level"] == level.upper()
    assert logging_config["loggers"]["portal"]["level"] == level.upper()


@pytest.mark.parametrize(
    ("bucket", "ok"),
    [
        ("portal-uploads", True),
        ("Portal.Uploads_2", True),
        ("a" * 255, True),
        ("a" * 256, False),
        ("portal uploads", False),
        ("portal/uploads", False),
    ],
)
def test_bucket_names_follow_botocores_rule(monkeypatch, bucket, ok):
    from boot import config as v

    v.PROBLEMS.clear()
    monkeypatch.setenv("AWS_STORAGE_BUCKET_NAME", bucket)
    try:
        read = boot_settings.Base.AWS_STORAGE_BUCKET_NAME.setup("AWS_STORAGE_BUCKET_NAME")
        assert (read == bucket, not v.PROBLEMS) == (ok, ok), v.PROBLEMS
    finally:
        v.PROBLEMS.clear()


# --- portal.dbgate: a kept connection whose server went away (PostgreSQL) -------------------


@pytest.mark.postgres
def test_a_kept_connection_whose_server_went_away_is_503_and_closes_the_gate(
    transactional_db, postgres_only, monkeypatch, caplog
):
    import psycopg
    from django.test import Client

    from portal import dbgate
    from tests.conftest import free_port

    monkeypatch.setattr(dbgate, "gate", dbgate.DatabaseGate(retry_seconds=2))
    url = "/api/v1/uploads/sessions/00000000-0000-0000-0000-000000000000"
    client = Client()
    assert client.get(url).status_code == 401  # through the gate; the connection is kept
    backend = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    with psycopg.connect(**{**params, "autocommit": True}) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend])
    # ... and the server is not reachable where it was: a reconnect fails too.
    port = connection.settings_dict["PORT"]
    connection.settings_dict["PORT"] = str(free_port())
    try:
        # What a server does at each request's start (the test client leaves it out): the
        # kept connection is checked again before its next use.
        close_old_connections()
        with caplog.at_level(logging.INFO, logger="portal.dbgate"):
            response = client.get(url)
    finally:
        connection.settings_dict["PORT"] = port
        connection.close()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
    assert [r.event for r in caplog.records if hasattr(r, "event")] == ["database.unavailable"]
    assert not dbgate.gate.admit()


def test_a_cors_preflight_passes_a_closed_gate_other_requests_get_503(db, monkeypatch):
    from django.test import Client

    from portal import dbgate

    monkeypatch.setattr(dbgate, "gate", dbgate.DatabaseGate(retry_seconds=60))
    dbgate.gate.failed(OperationalError("connection refused"))  # the database just failed
    client = Client()
    preflight = client.options("/api/v1/tus/")
    assert preflight.status_code == 204
    assert preflight["Tus-Resumable"] == "1.0.0"
    refused = client.get("/api/v1/uploads/sessions/00000000-0000-0000-0000-000000000000")
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "database_unavailable"


def test_an_unknown_method_is_counted_as_other(db, settings):
    from django.test import Client

    settings.PORTAL_METRICS_TOKEN = TOKEN
    client = Client()
    client.generic("XWARM", "/health")
    samples = scrape(client)
    counted = {
        dict(labels).get("method")
        for name, labels in samples
        if name == "portal_http_requests_total" and dict(labels).get("view") == "health"
    }
    assert "other" in counted and "XWARM" not in counted
