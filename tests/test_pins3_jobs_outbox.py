"""Pins for the jobs area, third round (issue #31): what the dispatcher counts as a
delivery and how a run records it, against a real runner on loopback."""

import pytest

from portal.models import OutboxEvent
from portal.services.outbox import dispatch
from tests.outbox_helpers import config, make_events, reload

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
