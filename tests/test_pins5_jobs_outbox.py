"""Weak pins in the outbox (issue #31, fifth round): data that lets a wrong dispatcher
pass too."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from portal.models import OutboxEvent
from portal.services import outbox
from tests.commands import run_command
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


def test_a_plain_dispatch_run_leaves_failed_events_failed(runner_settings, runner):
    """Only ``--retry-failed`` gives failed events new attempts: a dispatcher that requeued
    them on every cron run would hammer a runner that rejects them, minute after minute,
    and the operator's "fix the runner first" step would mean nothing."""
    [failed] = make_events(1, status=OutboxEvent.Status.FAILED, attempts=4)
    [pending] = make_events(1)

    result = run_command("portal_dispatch", "--json")
    summary = json.loads(result.out)
    assert (result.code, summary["delivered"], summary["requeued"]) == (0, 1, 0)
    assert reload(failed).status == OutboxEvent.Status.FAILED
    assert reload(failed).attempts == 4
    assert reload(pending).status == OutboxEvent.Status.DELIVERED

    result = run_command("portal_dispatch", "--json", "--retry-failed")
    summary = json.loads(result.out)
    assert (result.code, summary["delivered"], summary["requeued"]) == (0, 1, 1)
    assert reload(failed).status == OutboxEvent.Status.DELIVERED
