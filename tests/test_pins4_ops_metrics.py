"""Pins (issue #31, round 4) for the request metrics of the readiness probe."""

from django.test import Client

from tests.metrics_helpers import (  # noqa: F401  (metrics_settings: autouse here)
    duration_count,
    metrics_settings,
    requests_count,
)


def test_readiness_probes_are_counted_under_their_own_view_name(db, portal_storage):
    """/ready is answered before URL resolution; its requests still count as ``view="ready"``
    (not ``unresolved``), so a dashboard can tell probe traffic from stray paths."""
    labels = {"view": "ready", "method": "GET", "status": "2xx"}
    before, stray = (
        requests_count(**labels),
        requests_count(view="unresolved", method="GET", status="2xx"),
    )
    timed_before = duration_count(view="ready", method="GET")
    assert Client().get("/ready").status_code == 200
    assert requests_count(**labels) == before + 1
    assert duration_count(view="ready", method="GET") == timed_before + 1
    assert requests_count(view="unresolved", method="GET", status="2xx") == stray
