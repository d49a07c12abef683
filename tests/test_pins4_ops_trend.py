"""Pins (issue #31, round 4) for the /status backlog summary: the peak it quotes is the
largest backlog of the window, not the latest run's."""

import xml.etree.ElementTree as ET
from datetime import timedelta

from portal.services.status import trend
from tests.status_helpers import NOW, SVG, dispatch_run, fresh_probe_cache  # noqa: F401  (autouse)


def test_backlog_summary_quotes_the_largest_backlog_and_when_it_was(db):
    """An operator reads "at most N" to see how far the outbox fell behind: the peak run
    (here the middle one) must be named, not the last or the first run."""
    dispatch_run(NOW - timedelta(minutes=20), backlog=3)
    dispatch_run(NOW - timedelta(minutes=10), backlog=41)
    dispatch_run(NOW, backlog=7)
    context = trend.trend_context(NOW)
    assert context["backlog_summary"] == (
        "7 event(s) waiting after the last run (14:30 UTC); "
        "at most 41 over the last 3 runs (14:20 UTC)"
    )


def test_the_bold_value_on_a_chart_is_the_peak_bar(db):
    """The one value printed above the bars labels the tallest bar, not the latest one."""
    dispatch_run(NOW - timedelta(minutes=20), backlog=3)
    dispatch_run(NOW - timedelta(minutes=10), backlog=41)
    dispatch_run(NOW, backlog=7)
    svg = str(trend.trend_context(NOW)["backlog_svg"])
    assert 'font-weight="bold">41</text>' in svg
    assert 'font-weight="bold">7</text>' not in svg


def test_the_value_axis_reads_from_zero_to_the_peak(db):
    """The chart is well-formed SVG whose axis is labelled with 0 at the base line and the
    peak at the top: a reader needs both ends to read a bar's height."""
    dispatch_run(NOW - timedelta(minutes=10), backlog=41)
    dispatch_run(NOW, backlog=7)
    root = ET.fromstring(str(trend.trend_context(NOW)["backlog_svg"]))
    axis = [
        (float(text.get("y")), text.text)
        for text in root.iter(f"{SVG}text")
        if text.get("text-anchor") == "end"
    ]
    assert [label for _, label in sorted(axis)] == ["41", "0"]
    base = max(float(line.get("y1")) for line in root.iter(f"{SVG}line"))
    assert max(axis)[0] == base
