"""The /status page's outbox figures: pending, the oldest pending and the failed counts each
land in their own row, with values distinct enough that a swapped or missing figure shows."""

import re
from datetime import timedelta

import time_machine
from django.utils import timezone

from tests.status_helpers import HTML, dispatch_run, failed_event, pending_event


def figures(html):
    """``{term: definition}`` of the outbox section's figures list."""
    outbox = html.split('id="outbox"')[1].split('id="disks"')[0]
    return dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]*)</dd>", outbox))


def test_the_outbox_rows_show_pending_oldest_and_failed_counts(
    db, portal_storage, staff, no_probe_cache
):
    """2 pending (the older made 3 h 5 min ago) and 3 that gave up: each figure in its row."""
    now = timezone.now()
    pending_event(now - timedelta(minutes=10))
    pending_event(now - timedelta(hours=3, minutes=5))
    with time_machine.travel(now, tick=False):
        for n in range(3):
            failed_event(f"HTTP 50{n}")
        html = staff.get("/status", HTTP_ACCEPT=HTML).content.decode()

    assert figures(html) == {
        "Pending": "2",
        "Oldest pending": "3 h 5 min",
        "Failed (gave up)": "3",
    }


def test_an_empty_outbox_says_none_pending(db, portal_storage, staff, no_probe_cache):
    html = staff.get("/status", HTTP_ACCEPT=HTML).content.decode()
    assert figures(html) == {
        "Pending": "0",
        "Oldest pending": "none pending",
        "Failed (gave up)": "0",
    }


def test_each_state_reads_without_colour(db, portal_storage, staff, no_probe_cache):
    """The outbox heading carries a mark for its state: ✔ ok, then ▲ warning once an event
    gave up (a colour-blind reader or a text browser still sees which)."""
    html = staff.get("/status", HTTP_ACCEPT=HTML).content.decode()
    assert 'id="outbox">Outbox <span class="state ok">✔ ok</span>' in html
    failed_event()
    html = staff.get("/status", HTTP_ACCEPT=HTML).content.decode()
    assert 'id="outbox">Outbox <span class="state warning">▲ warning</span>' in html


def test_each_trend_chart_is_named_for_a_screen_reader(db, portal_storage, staff, no_probe_cache):
    """A ``role="img"`` SVG is announced by its ``<title>``: each chart says what it shows."""
    dispatch_run(timezone.now() - timedelta(minutes=1), backlog=2)
    html = staff.get("/status", HTTP_ACCEPT=HTML).content.decode()
    assert re.findall(r"<title>([^<]+)</title><desc>", html) == [
        "Uploads stored per hour",
        "Bytes stored per hour",
        "Outbox backlog after each dispatch run",
    ]
