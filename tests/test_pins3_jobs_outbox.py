"""Pins for the jobs area, third round (issue #31): what the dispatcher counts as a
delivery and how a run records it, against a real runner on loopback."""

import pytest

from portal.models import OutboxEvent
from portal.services.outbox import dispatch
from tests.outbox_helpers import SECRET, config, make_events, point_at_runner, reload
from tests.runner import RunnerServer

pytestmark = pytest.mark.django_db


def test_a_300_answer_is_no_delivery_and_is_retried(runner_settings, runner):
    """Only a 2xx is the runner's receipt: a 300 (a redirect the client does not follow)
    leaves the event pending with the status as its error, to be sent again."""
    runner.set_mode("error", status=300)
    [event] = make_events(1)
    result = dispatch.dispatch_due(config())
    assert (result.delivered, result.retried) == (0, 1)
    stored = reload(event)
    assert stored.status == OutboxEvent.Status.PENDING
    assert stored.last_error.startswith("HTTP 300")
    assert stored.delivered_at is None


def test_each_attempt_logs_how_long_the_runner_took(settings, caplog):
    """``duration_ms`` on ``outbox.dispatched`` and ``outbox.delivery_failed`` is the time
    the runner took to answer (here at least its 0.25 s delay): what an operator reads to
    tell a slow runner from a failing one."""
    with RunnerServer("ok", secret=SECRET, delay=0.25) as slow:
        point_at_runner(settings, slow)
        slow.script("ok", "error")
        make_events(2)
        caplog.set_level("INFO", logger="portal.services.outbox")
        result = dispatch.dispatch_due(config())
    assert (result.delivered, result.retried) == (1, 1)
    took = {
        r.event: r.duration_ms
        for r in caplog.records
        if r.__dict__.get("event") in ("outbox.dispatched", "outbox.delivery_failed")
    }
    assert set(took) == {"outbox.dispatched", "outbox.delivery_failed"}
    assert all(250 <= ms < 2000 for ms in took.values()), took
