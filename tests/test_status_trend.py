"""The /status trend: uploads and bytes per hour, the backlog per dispatch run, as SVG."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import time_machine
from django.test import Client

from portal.models import JobRun, UploadSession
from portal.services.outbox.dispatch import backlog_left
from portal.services.status import trend
from tests.outbox_helpers import make_events
from tests.status_helpers import (  # noqa: F401  (fresh_probe_cache: autouse here)
    NOW,
    SVG,
    completed_upload,
    dispatch_run,
    fresh_probe_cache,
)


def bars(svg):
    root = ET.fromstring(str(svg))
    return [rect.find(f"{SVG}title").text for rect in root.iter(f"{SVG}rect")]


def test_uploads_per_hour_over_24_hours(db, django_user_model):
    owner = django_user_model.objects.create_user("owner")
    completed_upload(owner, NOW - timedelta(minutes=10), 3 * 1024**2)  # 14:20
    completed_upload(owner, NOW - timedelta(minutes=25), 1024**2)  # 14:05
    completed_upload(owner, NOW - timedelta(hours=5), 1024)  # 09:30
    completed_upload(owner, NOW - timedelta(hours=25), 10)  # older than 24 h: left out
    completed_upload(owner, NOW, 7, status=UploadSession.Status.FAILED)  # not stored
    context = trend.trend_context(NOW)
    uploads, sizes = bars(context["uploads_svg"]), bars(context["bytes_svg"])
    assert len(uploads) == len(sizes) == 24
    assert uploads[-1] == "14:00 to 14:59 UTC: 2 upload(s)"
    assert uploads[-6] == "09:00 to 09:59 UTC: 1 upload(s)"
    assert uploads[0] == "15:00 to 15:59 UTC: 0 upload(s)"
    assert sizes[-1] == "14:00 to 14:59 UTC: 4.0 MiB"
    assert context["uploads_summary"] == "3 upload(s) in 24 h; busiest hour 14:00 UTC with 2"
    assert context["bytes_summary"] == "4.0 MiB stored in 24 h"


def test_a_settled_hour_is_counted_once_per_process(db, django_user_model):
    owner = django_user_model.objects.create_user("owner")
    trend.hourly_uploads(NOW)
    completed_upload(owner, NOW - timedelta(hours=5), 1024)  # 09:30, counted already
    completed_upload(owner, NOW - timedelta(minutes=10), 1024)  # 14:20, the current hour
    hours = {hour.hour: uploads for hour, uploads, _ in trend.hourly_uploads(NOW)}
    assert (hours[9], hours[14]) == (0, 1)  # a later row in a past hour: not read again
    completed_upload(owner, NOW + timedelta(minutes=31), 1024)  # 15:01
    # At 15:03 the 14:00 hour ended less than 5 minutes ago: read again, with 15:00.
    later = {h.hour: n for h, n, _ in trend.hourly_uploads(NOW + timedelta(minutes=33))}
    assert (later[14], later[15]) == (1, 1)


def test_backlog_per_dispatch_run(db):
    for minute in range(70):
        dispatch_run(NOW - timedelta(minutes=70 - minute), backlog=minute % 7)
    dispatch_run(NOW, backlog=500, outcome=JobRun.Outcome.PARTIAL)
    dispatch_run(NOW + timedelta(seconds=1), backlog=9999, outcome=JobRun.Outcome.FAILED)
    JobRun.objects.create(job="portal_dispatch", started_at=NOW, outcome="ok", counts={})
    context = trend.trend_context(NOW)
    runs = bars(context["backlog_svg"])
    assert len(runs) == trend.BACKLOG_RUNS - 1  # the last 60 successful runs, one without a count
    assert runs[-1] == "run at 14:30:00 UTC: 500 event(s) waiting after it"
    assert context["backlog_summary"].startswith("500 event(s) waiting after the last run")
    assert "9999" not in context["backlog_svg"]  # a failed run recorded no backlog of its own


def test_dispatch_run_records_the_backlog_it_leaves(db):
    make_events(3)
    assert backlog_left() == 3


def test_trend_on_the_page_is_inline_svg_with_words(
    db, portal_storage, django_user_model, settings
):
    staff = django_user_model.objects.create_user("ops", is_staff=True)
    completed_upload(staff, NOW - timedelta(hours=1), 2048)
    dispatch_run(NOW - timedelta(minutes=1), backlog=4)
    client = Client()
    client.force_login(staff)
    with time_machine.travel(NOW, tick=False):
        html = client.get("/status", HTTP_ACCEPT="text/html").content.decode()
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" role="img"') == 3
    assert "1 upload(s) in 24 h; busiest hour 13:00 UTC with 1" in html
    assert "4 event(s) waiting after the last run (14:29 UTC)" in html
    assert "<script" not in html and "http://" not in html.replace(SVG[1:-1], "")


def test_an_hour_that_ended_minutes_ago_is_counted_again_until_settled(db, django_user_model):
    """A session finished in an hour's last instant may commit a moment after it: the hour
    is cached only once ``SETTLED_AFTER`` has passed, so the late upload is not lost."""
    owner = django_user_model.objects.create_user("owner")
    at = datetime(2026, 12, 7, 15, 3, tzinfo=UTC)  # the 14:00 hour ended 3 minutes ago
    completed_upload(owner, at - timedelta(minutes=40), 1024**2)  # 14:23
    assert bars(trend.trend_context(at)["uploads_svg"])[-2] == "14:00 to 14:59 UTC: 1 upload(s)"
    completed_upload(owner, at - timedelta(minutes=3, microseconds=1), 2 * 1024**2)  # 14:59:59
    later = trend.trend_context(at + timedelta(minutes=1))
    assert bars(later["uploads_svg"])[-2] == "14:00 to 14:59 UTC: 2 upload(s)"
    assert bars(later["bytes_svg"])[-2] == "14:00 to 14:59 UTC: 3.0 MiB"


def test_the_bytes_charts_scale_reads_in_binary_units(db, django_user_model):
    """The scale's top label is the peak as a person reads it (``3.0 MiB``), as the bars'
    titles are, not a raw byte count."""
    owner = django_user_model.objects.create_user("owner")
    completed_upload(owner, NOW - timedelta(minutes=10), 3 * 1024**2)
    completed_upload(owner, NOW - timedelta(hours=2), 1024)
    root = ET.fromstring(str(trend.trend_context(NOW)["bytes_svg"]))
    scale = [t.text for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "end"]
    assert scale == ["3.0 MiB", "0"]
