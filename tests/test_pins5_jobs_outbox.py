"""Weak pins in the outbox (issue #31, fifth round): data that lets a wrong dispatcher
pass too."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from portal.models import OutboxEvent
from portal.services import outbox
from tests.outbox_helpers import config, make_events, reload

pytestmark = pytest.mark.django_db


def give_up(event, at):
    """Claim ``event`` (on its last attempt) and record a failed delivery at ``at``."""
    with time_machine.travel(at, tick=False):
        cfg = config()
        claim = outbox.claim_due(cfg)
        failure = outbox.Failure(reload(event), outbox.SendOutcome(ok=False, status=500))
        result = outbox.DispatchResult()
        outbox.record_outcomes(claim, [], [failure], cfg, result)
    assert result.gave_up == 1


def test_an_event_that_gave_up_is_stamped_with_the_moment_it_gave_up(runner_settings):
    """A failed event is never retried on its own: its ``next_attempt_at`` is the moment
    it gave up, the key the status page orders "gave up last" by. A dispatcher that stamped
    it with one more backoff (as for a retry) would date it up to a minute in the future
    and shuffle that list by jitter."""
    [first] = make_events(1, attempts=3)  # the fourth and last attempt
    first_at = timezone.now()
    give_up(first, first_at)
    [second] = make_events(1, attempts=3, due=first_at + timedelta(seconds=5))
    second_at = first_at + timedelta(seconds=5)
    give_up(second, second_at)

    rows = {row.pk: row for row in OutboxEvent.objects.all()}
    assert {rows[first.pk].status, rows[second.pk].status} == {OutboxEvent.Status.FAILED}
    assert rows[first.pk].next_attempt_at == first_at
    assert rows[second.pk].next_attempt_at == second_at
