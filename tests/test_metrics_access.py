"""Who may read /metrics, what the HTTP metrics count, and the readiness gauges."""

import shutil
import time

import pytest
from django.db import connection
from django.test import Client
from prometheus_client import REGISTRY

from portal.models import ApiToken
from portal.services.tokens import create_token
from tests.metrics_helpers import (  # noqa: F401  (metrics_settings: autouse here)
    TOKEN,
    duration_count,
    metrics_settings,
    requests_count,
    scrape,
    value,
)
from tests.settings_helpers import PROD_ENV, run_check


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("ops", password="pw-ops-123", is_staff=True)


def get(client, authorization=None, **extra):
    headers = {"Authorization": authorization} if authorization is not None else {}
    return client.get("/metrics", headers=headers, **extra)


def assert_refused(response, status, code):
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert b"portal_" not in response.content
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "missing_token"),
        ("Bearer wrong-token", "invalid_token"),
        (f"Bearer {TOKEN[:-1]}X", "invalid_token"),  # the right prefix, the tail wrong
        (f"Bearer {TOKEN}X", "invalid_token"),  # the token and more
        (f"Bearer {TOKEN[:20]}", "invalid_token"),  # a prefix of it
        (f"Bearer {TOKEN} {TOKEN}", "invalid_token"),
        ("Bearer " + "A" * 100_000, "invalid_token"),
        ("Bearer \u00e9t\u00e9", "invalid_token"),
        ("Bearer", "missing_token"),
        ("Bearer ", "missing_token"),
        (f"Basic {TOKEN}", "missing_token"),
        (TOKEN, "missing_token"),
    ],
)
def test_a_missing_or_wrong_token_gets_401(db, authorization, code):
    assert_refused(get(Client(), authorization), 401, code)


def test_the_token_gets_the_metrics_in_either_format(db):
    client = Client()
    response = get(client, f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert response["Cache-Control"].startswith("max-age=0")
    assert "portal_metrics_database_up" in response.content.decode()
    lower = get(client, f"bearer   {TOKEN}  ")
    assert lower.status_code == 200
    openmetrics = get(client, f"Bearer {TOKEN}", HTTP_ACCEPT="application/openmetrics-text")
    assert openmetrics["Content-Type"].startswith("application/openmetrics-text")
    assert openmetrics.content.decode().endswith("# EOF\n")


def test_no_metrics_token_configured_refuses_every_token(db, settings):
    settings.PORTAL_METRICS_TOKEN = ""
    assert_refused(get(Client(), "Bearer "), 401, "missing_token")
    assert_refused(get(Client(), "Bearer anything"), 401, "invalid_token")


def test_a_monitoring_api_token_yes_an_upload_token_no(db, settings, user):
    settings.PORTAL_METRICS_TOKEN = ""
    _, monitoring = create_token(user, name="prometheus", purpose=ApiToken.Purpose.MONITORING)
    _, upload = create_token(user, name="laptop")
    assert get(Client(), f"Bearer {monitoring}").status_code == 200
    assert_refused(get(Client(), f"Bearer {upload}"), 403, "wrong_token_purpose")
    ApiToken.objects.filter(purpose=ApiToken.Purpose.MONITORING).update(is_active=False)
    assert_refused(get(Client(), f"Bearer {monitoring}"), 401, "invalid_token")


def test_staff_session_yes_other_users_no(db, staff, user, django_user_model):
    as_staff = Client()
    as_staff.force_login(staff)
    assert get(as_staff).status_code == 200
    # Explicit credentials are judged alone: a wrong token with a staff session is refused.
    assert_refused(get(as_staff, "Bearer nope"), 401, "invalid_token")

    member = Client()
    member.force_login(user)
    assert_refused(get(member), 403, "forbidden")

    gone = django_user_model.objects.create_user("gone", password="pw-gone-123", is_staff=True)
    as_gone = Client()
    as_gone.force_login(gone)
    gone.is_active = False
    gone.save()
    assert_refused(get(as_gone), 401, "missing_token")


def test_a_monitoring_token_without_a_database_is_503_the_shared_token_still_works(
    transactional_db, user
):
    _, monitoring = create_token(user, purpose=ApiToken.Purpose.MONITORING)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE portal_apitoken RENAME TO portal_apitoken_away")
    try:
        refused = get(Client(), f"Bearer {monitoring}")
        shared = get(Client(), f"Bearer {TOKEN}")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE portal_apitoken_away RENAME TO portal_apitoken")
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "database_unavailable"
    assert shared.status_code == 200


@pytest.mark.parametrize("authorization", [None, f"Bearer {TOKEN}"])
def test_only_get_and_head(db, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    client = Client()
    assert client.post("/metrics", headers=headers).status_code in (403, 405)  # CSRF or 405
    assert client.put("/metrics", headers=headers).status_code in (403, 405)
    if authorization:
        assert client.post("/metrics", headers=headers).status_code == 405
        assert client.head("/metrics", headers=headers).status_code == 200


def test_token_scrape_ignores_host_and_ssl_redirect_a_browser_does_not(db, settings, staff):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["portal.example.com"]
    scraper = Client()
    # Prometheus on the network: plain HTTP, the instance's address as Host.
    response = get(scraper, f"Bearer {TOKEN}", HTTP_HOST="10.0.3.7:8000")
    assert response.status_code == 200
    assert_refused(get(scraper, "Bearer nope", HTTP_HOST="10.0.3.7:8000"), 401, "invalid_token")
    browser = Client()
    browser.force_login(staff)
    assert get(browser, HTTP_HOST="portal.example.com").status_code == 301
    assert get(browser, HTTP_HOST="10.0.3.7:8000").status_code == 400
    secure = get(browser, HTTP_HOST="portal.example.com", secure=True)
    assert secure.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "labels"),
    [
        ("GET", "/health", {"view": "health", "method": "GET", "status": "2xx"}),
        (
            "GET",
            "/api/v1/uploads/sessions",
            {"view": "upload-sessions", "method": "GET", "status": "4xx"},
        ),
        (
            "POST",
            "/api/v1/uploads/sessions/x/finalize",
            {"view": "upload-finalize", "method": "POST", "status": "4xx"},
        ),
        (
            "GET",
            "/api/v1/no/such/thing",
            {"view": "portal.views.uploads.unknown_endpoint", "method": "GET", "status": "4xx"},
        ),
        (
            "GET",
            "/nope/%0A/../etc/passwd",
            {"view": "unresolved", "method": "GET", "status": "4xx"},
        ),
        ("BREW", "/health", {"view": "health", "method": "other", "status": "4xx"}),
        ("GET", "/admin/login/", {"view": "admin", "method": "GET", "status": "2xx"}),
        ("GET", "/metrics", {"view": "metrics", "method": "GET", "status": "4xx"}),
    ],
)
def test_requests_are_counted_by_view_method_and_status_class(db, method, path, labels):
    before = requests_count(**labels)
    timed = {k: v for k, v in labels.items() if k != "status"}
    timed_before = duration_count(**timed)
    Client().generic(method, path)
    assert requests_count(**labels) == before + 1
    assert duration_count(**timed) == timed_before + 1


def http_series():
    return sum(len(f.samples) for f in REGISTRY.collect() if f.name.startswith("portal_http"))


def test_hostile_paths_and_methods_add_no_series(db):
    client = Client()
    client.get("/first-unknown")
    client.get("/api/v1/first-unknown")
    client.generic("XWARM", "/health")
    series = http_series()
    for n in range(50):
        client.get(f"/random-{n}-{time.monotonic_ns()}")
        client.get(f"/api/v1/random-{n}")
        client.generic(f"X{n}", "/health")
    assert http_series() == series


def test_readiness_gauges_follow_ready_and_a_scrape_runs_no_check(db, portal_storage, data_dir):
    client = Client()
    assert client.get("/ready").status_code == 200
    samples = scrape(client)
    checks = ("database", "storage:portal_temp", "storage:portal_final")
    assert {c: value(samples, "portal_ready_check_up", check=c) for c in checks} == dict.fromkeys(
        checks, 1
    )
    assert value(samples, "portal_ready_check_duration_seconds", check="database") > 0
    checked = value(samples, "portal_ready_check_timestamp_seconds", check="database")
    assert abs(checked - time.time()) < 60

    if portal_storage["PORTAL_STORAGE"] == "local":
        shutil.rmtree(data_dir / "temp", ignore_errors=True)
        (data_dir / "temp").write_text("not a directory")
        # Scrapes alone run no check: the storage is broken, the last answer still says ok.
        assert value(scrape(client), "portal_ready_check_up", check="storage:portal_temp") == 1
        assert client.get("/ready").status_code == 503
        samples = scrape(client)
        assert value(samples, "portal_ready_check_up", check="storage:portal_temp") == 0
        assert value(samples, "portal_ready_check_up", check="database") == 1


def test_a_metrics_token_with_a_space_fails_check_deploy_without_showing_it(tmp_path):
    # Placeholders, short and plain tokens: tests/reliability/test_settings_garbage.py.
    value, reason = "Qm7Vx2LpT9wK4cNb 8HzJ1yEa6Ud3FgR5xx", "whitespace"
    env = {
        **PROD_ENV,
        "DATABASE_URL": f"sqlite:///{tmp_path}/p.sqlite3",
        "PORTAL_METRICS_TOKEN": value,
    }
    result = run_check(env, "--deploy", configuration="Prod", tmp_path=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    line = next(line for line in result.stderr.splitlines() if "portal.E012" in line)
    assert "PORTAL_METRICS_TOKEN" in line and reason in line
    assert value not in result.stderr + result.stdout


def test_a_strong_metrics_token_passes_check_deploy(tmp_path):
    env = {
        **PROD_ENV,
        "DATABASE_URL": f"sqlite:///{tmp_path}/p.sqlite3",
        "PORTAL_METRICS_TOKEN": TOKEN,
    }
    result = run_check(
        env, "--deploy", "--fail-level", "WARNING", configuration="Prod", tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
