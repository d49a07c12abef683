"""Pins (issue #31, round 4) for /status: the failed-events table and the probes' logs."""

import logging
from datetime import timedelta

from django.test import Client
from django.utils import timezone

from tests.conftest import apply_storage
from tests.health_helpers import break_local_storage
from tests.status_helpers import HTML, failed_event, pending_event


def test_the_failed_events_table_lists_only_events_that_gave_up(
    db, portal_storage, staff, no_probe_cache
):
    """A pending event due later than the failed one would come first in a table sorted by
    due time: only events that gave up belong in "failed" (an operator requeues them)."""
    waiting = pending_event(timezone.now() + timedelta(hours=1))
    gave_up = failed_event("HTTP 502 Bad Gateway")
    html = staff.get("/status", HTTP_ACCEPT=HTML).content.decode()
    table = html.split("Last failed events")[1].split("</table>")[0]
    assert f"<code>{str(gave_up.pk)[:8]}</code>" in table
    assert f"<code>{str(waiting.pk)[:8]}</code>" not in table


def test_an_unready_answer_is_logged_once_as_the_failed_check_not_by_django(
    db, settings, data_dir, caplog
):
    """/ready logs each failing check as ``ready.check_failed``; Django's own "Service
    Unavailable" ERROR for the 503 would double every probe's failure in the logs."""
    apply_storage(settings, "local", data_dir)
    break_local_storage(data_dir)
    with caplog.at_level(logging.WARNING):
        assert Client().get("/ready").status_code == 503
    assert [r for r in caplog.records if r.name == "django.request"] == []
    assert any("portal_temp" in r.getMessage() for r in caplog.records)


def test_a_failing_status_page_is_logged_as_the_failed_check_not_by_django(
    db, settings, data_dir, staff, no_probe_cache, caplog
):
    """The HTML /status a person reads during an outage answers 503 too: like /ready and
    /status as JSON, its failure is logged once as the failed check, without Django's
    "Service Unavailable" ERROR on every refresh of the page."""
    apply_storage(settings, "local", data_dir)
    break_local_storage(data_dir)
    with caplog.at_level(logging.WARNING):
        response = staff.get("/status", HTTP_ACCEPT=HTML)
    assert response.status_code == 503 and b"<html" in response.content
    assert [r for r in caplog.records if r.name == "django.request"] == []
    assert any("portal_temp" in r.getMessage() for r in caplog.records)
