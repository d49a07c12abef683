"""Pins for the ops area (issue #31), in-process: ``/health``, ``/ready`` and ``/status``
(``portal.health``), the probe executor and lanes, ``/metrics`` access and labels. Each test
fails on a careless change listed in ``tests/mutant_area_ops*.py``; the status page's units
are ``test_pins_ops_status.py``'s, the drain's and the logs' ``test_pins_ops_logs.py``'s, the
system checks' and settings values' ``test_pins_ops_boot.py``'s."""

import errno
import logging
from datetime import timedelta

import pytest
import time_machine
from django.core.files.storage import storages
from django.db import OperationalError
from django.test import Client
from django.utils import timezone

from portal.health import checks as health_checks
from portal.health import executor as probes
from portal.models import JobRun, OutboxEvent

MIB = 1024 * 1024


# --- portal.health: /health, /ready and /status ------------------------------------------


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


def test_status_credentials_without_a_database_are_a_503(db, no_probe_cache, monkeypatch):
    def no_database(request, purpose):
        raise OperationalError("could not connect")

    monkeypatch.setattr("portal.health.views.authenticate", no_database)
    response = Client().get("/status?format=json", HTTP_AUTHORIZATION="Bearer pt_anything")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
