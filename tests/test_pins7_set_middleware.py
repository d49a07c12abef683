"""The middleware order of ``boot.settings``: layers that must see answers given by the
layers below them (the database gate's 503), and the admin's frame protection."""

from django.db import OperationalError

from portal import dbgate
from portal.dbgate import DatabaseGate
from tests.tus_helpers import TUS


def test_the_gates_503_on_the_tus_endpoint_carries_tus_resumable(client, db, monkeypatch):
    """TusHeadersMiddleware sits above the database gate: a tus client that gets the
    gate's 503 still sees ``Tus-Resumable`` and ``Cache-Control`` (and retries)."""
    monkeypatch.setattr(dbgate, "gate", DatabaseGate(retry_seconds=2))

    def down(alias="default"):
        raise OperationalError("connection refused")

    monkeypatch.setattr(dbgate, "connect", down)
    response = client.head(TUS + "00000000000000000000000000000000")
    assert response.status_code == 503
    assert (response["Tus-Resumable"], response["Cache-Control"]) == ("1.0.0", "no-store")


def test_admin_pages_refuse_to_be_framed(client, db):
    """The admin's pages answer ``X-Frame-Options: DENY`` (no clickjacking of a staff
    session)."""
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"


def test_the_metrics_scrape_answered_early_still_carries_the_request_id(client, db, settings):
    """RequestIdMiddleware sits above MetricsMiddleware, which answers a scrape itself:
    the scrape's answer (and a refused one's log line) still carries the caller's id."""
    settings.PORTAL_METRICS_TOKEN = "Zq8-xW3_rT6yU1iO0pA9sD2fG5hJ4kL7zX_cV"
    scrape = client.get(
        "/metrics",
        HTTP_AUTHORIZATION=f"Bearer {settings.PORTAL_METRICS_TOKEN}",
        HTTP_X_REQUEST_ID="scrape-1",
    )
    refused = client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", HTTP_X_REQUEST_ID="s-2")
    assert (scrape.status_code, scrape["X-Request-ID"]) == (200, "scrape-1")
    assert refused.status_code == 401
    assert refused["X-Request-ID"] == "s-2"


def test_the_admins_static_files_are_served_by_the_app(settings, tmp_path):
    """WhiteNoise serves the admin's CSS from the app itself (no proxy host shares it):
    a stylesheet under STATIC_ROOT is answered whole, without a view or a database."""
    from django.test import Client

    (tmp_path / "admin" / "css").mkdir(parents=True)
    (tmp_path / "admin" / "css" / "base.css").write_text("body { margin: 0 }\n")
    settings.STATIC_ROOT = str(tmp_path)
    response = Client().get("/static/admin/css/base.css")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"body { margin: 0 }\n"
