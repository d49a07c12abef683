"""/health, /ready and /status in-process: real storage, real database, real failures.

Outages of the database (stopped server, black hole) need a server process and live in
``test_health_server.py``.
"""

import logging
import threading
import time
from datetime import timedelta

import pytest
import time_machine
from asgiref.sync import async_to_sync
from django.db import connections
from django.test import AsyncClient, Client
from django.utils import timezone
from health_check.exceptions import ServiceUnavailable

from portal.health import executor as probes
from portal.models import JobRun, OutboxEvent
from portal.services.tokens import hash_token
from tests.conftest import apply_storage
from tests.health_helpers import break_local_storage

SECRET_WORDS = ("Errno", "Error", "Traceback", "127.0.0.1", "testing", "/tmp", "Could not")


pytestmark = pytest.mark.usefixtures("no_probe_cache")


def wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def assert_no_details(response):
    text = response.content.decode()
    for word in SECRET_WORDS:
        assert word not in text


def test_health_answers_without_database_storage_or_the_middleware_stack(settings, data_dir):
    # No db fixture: any query would raise. Broken storage: /health must not care.
    apply_storage(settings, "local", data_dir)
    break_local_storage(data_dir)
    client = Client()
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]
    assert response["Content-Length"] == str(len(response.content))
    # XFrameOptionsMiddleware and SessionMiddleware never saw the request.
    assert "X-Frame-Options" not in response
    assert "Cookie" not in response.get("Vary", "")
    assert client.head("/health").status_code == 200
    assert client.post("/health").status_code == 405


def test_ready_healthy_get_and_head(db, portal_storage):
    client = Client()
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "storage:portal_temp": "ok", "storage:portal_final": "ok"},
    }
    assert "no-cache" in response["Cache-Control"]
    head = client.head("/ready")
    assert head.status_code == 200
    assert head.content == b""


def test_ready_503_when_local_storage_directory_is_a_file(db, settings, data_dir, caplog):
    apply_storage(settings, "local", data_dir)
    break_local_storage(data_dir, "final")
    with caplog.at_level(logging.WARNING, logger="portal.health"):
        response = Client().get("/ready")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {
            "database": "ok",
            "storage:portal_temp": "ok",
            "storage:portal_final": "unavailable",
        },
    }
    assert_no_details(response)
    failures = [r for r in caplog.records if getattr(r, "event", "") == "ready.check_failed"]
    assert len(failures) == 1
    assert failures[0].levelno == logging.WARNING
    assert failures[0].check == "storage:portal_final"
    assert failures[0].error_type in ("FileExistsError", "NotADirectoryError")


@pytest.mark.s3
def test_ready_503_when_s3_goes_away(db, settings, data_dir, moto_s3_factory):
    s3 = moto_s3_factory()
    apply_storage(settings, "s3", data_dir, s3=s3, bucket=s3.new_bucket())
    client = Client()
    assert client.get("/ready").status_code == 200
    s3.stop()
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "ok",
        "storage:portal_temp": "unavailable",
        "storage:portal_final": "unavailable",
    }
    assert_no_details(response)
    assert str(s3.port) not in response.content.decode()


def test_probes_ignore_allowed_hosts_and_ssl_redirect(db, portal_storage, settings):
    settings.ALLOWED_HOSTS = ["portal.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    client = Client()
    for path in ("/health", "/ready"):
        assert client.get(path, HTTP_HOST="10.0.3.7").status_code == 200
        assert client.get(path, HTTP_HOST="10.0.3.7:8000").status_code == 200
        assert client.get(path, HTTP_HOST="portal.example.com").status_code == 200
    # Everything else keeps both protections.
    assert client.get("/status", HTTP_HOST="10.0.3.7").status_code == 400
    assert client.get("/status", HTTP_HOST="portal.example.com").status_code == 301


def test_atomic_requests_do_not_wrap_the_check_views(db, portal_storage, settings):
    # Through the URL routes (ProbeMiddleware removed): Django refuses ATOMIC_REQUESTS on
    # async views unless they are marked non-atomic, as HealthCheckView.dispatch is.
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if m != "portal.health.views.ProbeMiddleware"
    ]
    default = connections["default"].settings_dict
    default["ATOMIC_REQUESTS"] = True
    try:
        assert Client().get("/ready").status_code == 200
        assert Client().get("/health").status_code == 200
    finally:
        default["ATOMIC_REQUESTS"] = False


def test_ready_cache_reuses_an_answer_for_its_lifetime(db, settings, data_dir):
    settings.PORTAL_READY_CACHE_SECONDS = 2
    apply_storage(settings, "local", data_dir)
    client = Client()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        assert client.get("/ready").status_code == 200
        break_local_storage(data_dir)
        clock.shift(1.5)
        assert client.get("/ready").status_code == 200  # the cached answer
        clock.shift(1)
        assert client.get("/ready").status_code == 503  # expired: the outage shows
        (data_dir / "temp").unlink()
        assert client.get("/ready").status_code == 503  # the failure is cached too
        clock.shift(2)
        assert client.get("/ready").status_code == 503  # the root is missing now
        (data_dir / "temp").mkdir()  # the operator mounts the volume again
        clock.shift(2)
        assert client.get("/ready").status_code == 200


def test_a_missing_local_root_is_unavailable_and_never_recreated(db, settings, data_dir):
    """An unmounted volume: /ready says so and nothing writes under the mount point, so the
    next cleanup cannot take the unreachable objects for deleted."""
    apply_storage(settings, "local", data_dir)
    (data_dir / "temp").rmdir()
    client = Client()
    for _ in range(3):
        response = client.get("/ready")
        assert response.status_code == 503
        assert response.json()["checks"] == {
            "database": "ok",
            "storage:portal_temp": "unavailable",
            "storage:portal_final": "ok",
        }
    assert not (data_dir / "temp").exists()


def test_single_flight_executor_shares_a_hung_call():
    pool = probes.SingleFlightExecutor(max_workers=2)
    release = threading.Event()
    started = []

    class Hangs:
        timeout = timedelta(seconds=60)

        def __repr__(self):
            return "Hangs()"

        def run(self):
            started.append(threading.get_ident())
            release.wait(10)
            return "done"

    followers = [pool.submit(Hangs().run) for _ in range(50)]
    wait_until(lambda: started)
    assert len(started) == 1  # fifty probes, one call running
    followers[0].cancel()  # a caller that gave up does not cancel the others
    release.set()
    assert [f.result(timeout=5) for f in followers[1:]] == ["done"] * 49
    assert len(started) == 1
    # Once it finished, the next probe starts a new call.
    assert pool.submit(Hangs().run).result(timeout=5) == "done"
    assert len(started) == 2
    pool.shutdown()


def test_single_flight_executor_fails_fast_past_the_budget():
    pool = probes.SingleFlightExecutor(max_workers=2)
    release = threading.Event()

    class Hangs:
        timeout = timedelta(seconds=0)

        def __repr__(self):
            return "Hangs()"

        def run(self):
            release.wait(10)

    first = pool.submit(Hangs().run)
    later = pool.submit(Hangs().run)
    with pytest.raises(ServiceUnavailable):
        later.result(timeout=1)
    assert not first.done()
    release.set()
    first.result(timeout=5)
    pool.shutdown()


# --- /status ------------------------------------------------------------------------------


def job_run(job, outcome, age):
    at = timezone.now() - age
    return JobRun.objects.create(job=job, started_at=at, finished_at=at, outcome=outcome)


def outbox_event(status, age):
    event = OutboxEvent.objects.create(
        event_type="file.uploaded",
        aggregate_id="x",
        payload={},
        idempotency_key=f"{status}-{age}",
        status=status,
        next_attempt_at=timezone.now(),
    )
    OutboxEvent.objects.filter(pk=event.pk).update(created_at=timezone.now() - age)


@pytest.fixture
def staff_client(django_user_model):
    staff = django_user_model.objects.create_user("ops", password="pw-ops-123", is_staff=True)
    client = Client()
    client.force_login(staff)
    return client


def test_status_requires_staff_or_a_token(db, portal_storage, user):
    anonymous = Client()
    response = anonymous.get("/status", HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_token"
    browser = anonymous.get("/status", HTTP_ACCEPT="text/html")
    assert browser.status_code == 302
    assert browser["Location"].startswith("/admin/login/?next=/status")
    bad = anonymous.get("/status?format=json", HTTP_AUTHORIZATION="Bearer pt_nope")
    assert bad.status_code == 401

    member = Client()
    member.force_login(user)
    assert member.get("/status?format=json").status_code == 403

    upload = "pt_status-upload-token"
    user.api_tokens.create(key_prefix=upload[:10], key_hash=hash_token(upload))
    refused = anonymous.get("/status?format=json", HTTP_AUTHORIZATION=f"Bearer {upload}")
    assert refused.status_code == 403  # an upload token does not open the operators' view
    assert refused.json()["error"]["code"] == "wrong_token_purpose"

    raw = "pt_status-test-token"
    user.api_tokens.create(key_prefix=raw[:10], key_hash=hash_token(raw), purpose="monitoring")
    with_token = anonymous.get("/status?format=json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert with_token.status_code == 200
    # ... and a monitoring token cannot upload.
    api = anonymous.post(
        "/api/v1/uploads/sessions",
        data="{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert api.status_code == 403


def test_status_reports_job_freshness_and_backlog_without_touching_ready(
    db, portal_storage, staff_client
):
    job_run("portal_cleanup", JobRun.Outcome.PARTIAL, timedelta(minutes=20))
    job_run("portal_cleanup", JobRun.Outcome.FAILED, timedelta(minutes=1))
    job_run("portal_dispatch", JobRun.Outcome.OK, timedelta(minutes=3))
    outbox_event(OutboxEvent.Status.PENDING, timedelta(minutes=30))
    outbox_event(OutboxEvent.Status.PENDING, timedelta(minutes=1))
    outbox_event(OutboxEvent.Status.FAILED, timedelta(hours=2))
    outbox_event(OutboxEvent.Status.DELIVERED, timedelta(hours=2))

    report = staff_client.get("/status?format=json")
    assert report.status_code == 200
    body = report.json()
    assert body["status"] == "ok"
    assert body["checks"] == {
        "database": "ok",
        "storage:portal_temp": "ok",
        "storage:portal_final": "ok",
    }
    cleanup, dispatch = body["jobs"]["portal_cleanup"], body["jobs"]["portal_dispatch"]
    assert cleanup["state"] == "ok"  # partial counts; the newer failed run does not
    assert 1190 <= cleanup["age_seconds"] <= 1210
    assert cleanup["max_age_seconds"] == 1800
    assert dispatch["state"] == "warning"  # 3 min > 2 x 1 min
    assert dispatch["max_age_seconds"] == 120
    assert body["outbox"]["state"] == "warning"
    assert body["outbox"]["pending"] == 2
    assert body["outbox"]["failed"] == 1
    assert 1790 <= body["outbox"]["oldest_pending_age_seconds"] <= 1810

    # A stalled cron and a failed event never take the instance out of rotation.
    assert Client().get("/ready").status_code == 200

    with time_machine.travel(timezone.now() + timedelta(minutes=15)):
        later = staff_client.get("/status", HTTP_ACCEPT="application/json").json()
    assert later["jobs"]["portal_cleanup"]["state"] == "warning"  # 35 min > 30 min


def test_status_html_for_a_browser(db, portal_storage, staff_client, data_dir, settings):
    page = staff_client.get("/status", HTTP_ACCEPT="text/html,application/xhtml+xml")
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    assert "portal_cleanup" in html
    assert "storage:portal_final" in html
    assert "has never completed" not in html
    if settings.PORTAL_STORAGE == "local":
        break_local_storage(data_dir)
        down = staff_client.get("/status")
        assert down.status_code == 503
        assert_no_details(down)


def test_probes_under_asgi(db, portal_storage):
    # The middleware is async-capable: under ASGI it awaits the view on the server's loop.
    client = AsyncClient()
    health = async_to_sync(client.get)("/health", headers={"host": "10.0.3.7"})
    assert (health.status_code, health.content) == (200, b'{"status": "ok"}')
    ready = async_to_sync(client.get)("/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"
