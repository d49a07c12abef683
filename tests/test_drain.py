"""The drain in-process: /ready answers 503 ``draining`` while the maintenance file or the
master's shutdown marker exists, without running its checks. The real gunicorn (SIGTERM,
the command, the log) is in ``tests/topology/test_drain.py``."""

import logging

import pytest
from django.core.management import call_command
from django.test import Client

from boot import config as v
from portal.health import drain
from portal.health import executor as probes
from tests.health_helpers import break_local_storage


@pytest.fixture(autouse=True)
def fresh_probe_cache(settings):
    settings.PORTAL_READY_CACHE_SECONDS = 60
    # A busy machine (S3 is an in-process moto server in the S3 pass) must not fail the
    # healthy checks these tests start from.
    settings.PORTAL_HEALTH_CHECK_TIMEOUT_SECONDS = 30
    probes.results.clear()
    yield
    probes.results.clear()


def test_ready_drains_while_the_maintenance_file_exists(db, portal_storage, data_dir, caplog):
    client = Client()
    assert client.get("/ready").status_code == 200  # and cached for 60 s
    call_command("portal_drain", "start")
    assert (data_dir / "drain").exists()
    break_local_storage(data_dir)
    with caplog.at_level(logging.INFO):
        response = client.get("/ready")
        head = client.head("/ready")
    assert response.status_code == head.status_code == 503
    assert response.json() == {"status": "draining", "reason": "maintenance"}
    assert response["X-Portal-Drain"] == "maintenance"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert client.get("/health").status_code == 200
    call_command("portal_drain", "stop")
    assert client.get("/ready").status_code == 200  # the cached answer, not the drain


def test_drain_file_setting_and_shutdown_marker(
    db, portal_storage, settings, tmp_path, monkeypatch
):
    settings.PORTAL_DRAIN_FILE = str(tmp_path / "flags" / "portal.health.drain")
    assert drain.reason() is None
    call_command("portal_drain", "start")
    assert (tmp_path / "flags" / "portal.health.drain").exists()
    assert drain.reason() == "maintenance"
    marker = tmp_path / "portal-drain-123"
    monkeypatch.setenv(drain.MARKER_ENV, str(marker))
    assert drain.reason() == "maintenance"
    marker.touch()
    assert drain.reason() == "shutdown"  # the master's drain wins: it ends in a stop
    response = Client().get("/ready")
    assert (response.status_code, response.json()["reason"]) == (503, "shutdown")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [({}, 10.0), ({"X": "2.5"}, 2.5), ({"X": "soon"}, 10.0), ({"X": "-1"}, 10.0)],
)
def test_gunicorns_master_reads_values_as_the_settings_do(environ, expected):
    value = v.FloatValue(10.0, min_value=0, max_value=60)
    assert v.from_environ(value, "X", environ) == expected
    assert v.PROBLEMS == []
