"""Pins for the ops area (issue #31, second round), in-process: what ``/status`` answers for
each Accept header, the milliseconds of a failed check's log line, the JSON log's timestamp
(``portal.health.views``, ``boot.logging``)."""

import json
import logging
import threading

import pytest
from django.core.files.storage import storages
from django.test import Client

from boot.logging import PortalJsonFormatter
from tests.conftest import apply_storage

# --- /status: the first acceptable type decides, HTML types before a later JSON ------------


@pytest.mark.parametrize(
    ("accept", "json_wanted"),
    [
        ("*/*, application/json", False),
        ("text/*, application/json", False),
        ("application/xhtml+xml, application/json", False),
        ("text/html, application/json", False),
        ("image/png, application/json", True),
        ("application/json, text/html", True),
        ("application/*, */*", True),
        ("image/png", False),
        (None, False),
    ],
)
def test_status_takes_the_first_type_it_knows_from_accept(
    staff, portal_storage, no_probe_cache, accept, json_wanted
):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    response = staff.get("/status", **headers)
    assert response.status_code == 200
    expected = "application/json" if json_wanted else "text/html"
    assert response["Content-Type"].startswith(expected)


def test_without_credentials_a_browsers_accept_gets_the_login_page(db, no_probe_cache):
    client = Client()
    assert client.get("/status", HTTP_ACCEPT="*/*, application/json").status_code == 302
    refused = client.get("/status", HTTP_ACCEPT="image/png, application/json")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "missing_token"


# --- /ready: a failed check's duration in whole milliseconds --------------------------------


def test_a_slow_failed_check_logs_its_duration_in_milliseconds(
    db, portal_storage, no_probe_cache, monkeypatch, caplog
):
    clock = {"now": 1000.0}
    monkeypatch.setattr("health_check.base.timeit.default_timer", lambda: clock["now"])

    def save(name, content, max_length=None):
        clock["now"] += 7.5  # the write takes 7.5 s, then fails
        raise RuntimeError("write failed")

    monkeypatch.setattr(storages["portal_final"], "save", save)
    with caplog.at_level(logging.INFO, logger="portal.health"):
        response = Client().get("/ready")
    assert response.status_code == 503
    [failure] = [r for r in caplog.records if getattr(r, "event", "") == "ready.check_failed"]
    assert (failure.check, failure.duration_ms) == ("storage:portal_final", 7500)


# --- ProbeMiddleware: a WSGI worker answers probes in its own thread, starting none ----------


def test_probes_under_wsgi_start_no_thread(db, settings, data_dir, no_probe_cache):
    # Local storage: boto's transfers start threads of their own (not the middleware's).
    apply_storage(settings, "local", data_dir)
    client = Client()
    assert client.get("/ready").status_code == 200  # the probe pool's threads start once
    started = []
    previous = threading.gettrace()

    def note(frame, event, arg):
        started.append(threading.current_thread().name)
        return None

    threading.settrace(note)
    try:
        for _ in range(3):
            assert client.get("/health").status_code == 200
            assert client.get("/ready").status_code == 200
    finally:
        threading.settrace(previous)
    assert started == []


# --- boot.logging: the JSON timestamp -------------------------------------------------------


def test_the_json_timestamp_is_utc_to_the_millisecond():
    record = logging.LogRecord("portal.x", logging.INFO, __file__, 1, "hello", None, None)
    record.created = 1_700_000_000.987654  # 2023-11-14 22:13:20.987654 UTC
    line = json.loads(PortalJsonFormatter().format(record))
    assert line["timestamp"] == "2023-11-14T22:13:20.987+00:00"
    record.created = 1_700_000_000.0
    line = json.loads(PortalJsonFormatter().format(record))
    assert line["timestamp"] == "2023-11-14T22:13:20.000+00:00"


# --- HEAD is a probe's method and a scrape's ------------------------------------------------


def test_health_and_metrics_answer_head_and_name_both_methods_when_refusing(db, settings):
    from tests.metrics_helpers import AUTH, TOKEN

    settings.PORTAL_METRICS_TOKEN = TOKEN
    client = Client()
    head = client.head("/health")
    assert (head.status_code, head.content) == (200, b"")
    refused = client.post("/health")
    assert (refused.status_code, refused["Allow"]) == (405, "GET, HEAD")
    assert client.head("/metrics", headers=AUTH).status_code == 200
    refused = client.post("/metrics", headers=AUTH)
    assert refused.status_code == 405
    assert refused["Allow"] == "GET, HEAD"


def test_a_failed_checks_error_is_logged_to_500_characters(
    db, portal_storage, no_probe_cache, monkeypatch, caplog
):
    def save(name, content, max_length=None):
        raise RuntimeError("y" * 499 + "z" + "tail" * 100)

    monkeypatch.setattr(storages["portal_temp"], "save", save)
    with caplog.at_level(logging.INFO, logger="portal.health"):
        assert Client().get("/ready").status_code == 503
    [failure] = [r for r in caplog.records if getattr(r, "event", "") == "ready.check_failed"]
    assert failure.error == "y" * 499 + "z"


def test_the_admins_static_files_are_under_static(db, admin_client):
    html = admin_client.get("/admin/").content.decode()
    assert 'href="/static/admin/css/base.css"' in html
