"""Pins for the ops area (issue #31, second round), in-process: the library's own storage
verdicts kept by the readiness check, a job that never ran on ``/status``, the backlog
chart's labels, choice settings, the access filter and the redaction of the settings'
secrets and of bad format strings."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.storage import storages
from django.test import Client

from boot import config as v
from boot.logging import GunicornAccessFilter
from portal.observability import REDACTED, RedactingFilter
from portal.services.status import trend
from tests.log_helpers import access_record, json_line

# --- portal.health.checks -------------------------------------------------------------------


def test_a_storage_that_keeps_what_it_deletes_is_unavailable(
    db, portal_storage, no_probe_cache, monkeypatch
):
    # The library's own verdict ("File was not deleted"), not an error of the backend.
    monkeypatch.setattr(storages["portal_temp"], "delete", lambda name: None)
    response = Client().get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "ok",
        "storage:portal_temp": "unavailable",
        "storage:portal_final": "ok",
    }


def test_a_job_that_never_completed_is_a_warning_not_unavailable(
    db, portal_storage, no_probe_cache, django_user_model
):
    staff = django_user_model.objects.create_user("oncall3", password="pw", is_staff=True)
    client = Client()
    client.force_login(staff)
    response = client.get("/status", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["jobs"], body
    for job, entry in body["jobs"].items():
        assert entry["state"] == "warning", job
        assert (entry["last_success_at"], entry["age_seconds"]) == (None, None)
        assert entry["max_age_seconds"] > 0


# --- portal.services.status.trend: the backlog chart labels the last run and every step-th --


def backlog_labels(count):
    start = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)
    points = [(start + timedelta(minutes=10 * n), n) for n in range(count)]
    svg = str(trend.backlog_chart(points)["backlog_svg"])
    return [f"{at:%H:%M}" for at, _ in points if f">{at:%H:%M}</text>" in svg]


def test_the_backlog_chart_labels_every_run_when_few():
    assert backlog_labels(3) == ["00:00", "00:10", "00:20"]


def test_the_backlog_chart_labels_every_step_th_run_counting_from_the_last():
    # 13 runs: a label every second run, the last one labelled.
    assert backlog_labels(13) == [
        f"{(10 * n) // 60:02d}:{(10 * n) % 60:02d}" for n in (0, 2, 4, 6, 8, 10, 12)
    ]
    assert backlog_labels(12)[-1] == "01:50"
    assert "00:00" not in backlog_labels(12)


# --- boot.config: choices ---------------------------------------------------------------------


def test_a_choice_is_read_trimmed_and_lowercased():
    value = v.ChoiceValue("console", choices=("json", "console"))
    assert value.to_python("  JSON ") == "json"
    assert v.from_environ(value, "X", {"X": "Console"}) == "console"


def test_a_wrong_choice_names_the_choices(monkeypatch):
    v.PROBLEMS.clear()
    monkeypatch.setenv("PORTAL_LOG_FORMAT", "xml")
    try:
        assert v.ChoiceValue("json", choices=("json", "console")).setup("PORTAL_LOG_FORMAT") == (
            "json"
        )
        assert v.PROBLEMS == ["PORTAL_LOG_FORMAT='xml': must be one of json, console"]
    finally:
        v.PROBLEMS.clear()


# --- boot.logging: gunicorn's access lines it cannot read are kept ----------------------------


class Kept(logging.Handler):
    """The records that reach the output (gunicorn formats "%(r)s"-style lines itself)."""

    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.mark.parametrize("status", ["-", "", "abc"])
def test_an_access_line_without_a_status_number_is_kept(status):
    handler = Kept()
    handler.addFilter(GunicornAccessFilter())
    logger = logging.getLogger(f"gunicorn.access.pins2.{status or 'empty'}")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.handle(access_record(status))
        logger.handle(access_record(200, path="/ready"))  # a quiet probe, for contrast
    finally:
        logger.removeHandler(handler)
    assert [r.args["s"] for r in handler.records] == [status]


def test_a_plain_line_on_the_access_logger_is_kept():
    handler = Kept()
    handler.addFilter(GunicornAccessFilter())
    logger = logging.getLogger("gunicorn.access.pins2.plain")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.handle(
            logging.LogRecord(
                logger.name, logging.INFO, __file__, 1, "reopened by %s", ("SIGUSR1",), None
            )
        )
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in handler.records] == ["reopened by SIGUSR1"]


# --- portal.observability: redaction --------------------------------------------------------


def test_the_secret_key_of_the_settings_is_redacted(settings, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    settings.SECRET_KEY = "k3y-of-the-settings-0123456789-abcdefghij"
    record = logging.LogRecord(
        "portal.x", logging.INFO, __file__, 1, "signing with %s", (settings.SECRET_KEY,), None
    )
    line = json_line(record, RedactingFilter())
    assert line["message"] == f"signing with {REDACTED}"


def test_a_bad_format_string_keeps_its_parts_still_scrubbed():
    secret = "s3cret-value-0123456789"
    record = logging.LogRecord(
        "portal.x", logging.INFO, __file__, 1, "%d files for %s", ("many", secret), None
    )
    line = json_line(record, RedactingFilter(secrets=[secret]))
    assert line["message"] == f"%d files for %s ('many', '{REDACTED}')"


def test_a_bars_label_is_centred_under_it():
    import re

    start = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)
    points = [(start + timedelta(minutes=10 * n), 3 * n + 1) for n in range(4)]
    svg = str(trend.backlog_chart(points)["backlog_svg"])
    bars = re.findall(r'<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', svg)
    labels = re.findall(r'<text x="([\d.]+)" y="\d+" text-anchor="middle">\d\d:\d\d</text>', svg)
    assert len(bars) == len(labels) == 4
    for (x, width), centre in zip(bars, labels, strict=True):
        assert abs(float(x) + float(width) / 2 - float(centre)) <= 0.1


def test_a_bearer_token_is_redacted_after_its_scheme():
    record = logging.LogRecord(
        "portal.x",
        logging.INFO,
        __file__,
        1,
        "header was %s",
        ("Bearer abc.DEF-123_xyz",),
        None,
    )
    line = json_line(record, RedactingFilter(secrets=[]))
    assert line["message"] == f"header was Bearer {REDACTED}"


def test_the_access_filter_trusts_no_forwarded_for_by_default():
    record = access_record(200, **{"{x-forwarded-for}i": "203.0.113.9"})
    assert GunicornAccessFilter().filter(record)
    assert record.remote_addr == "10.0.0.9"
    assert not hasattr(record, "client_addr")
