"""Pins for the jobs area, fourth round (issue #31): the one JSON line ``portal_dispatch
--json`` prints for cron (docs/operations.md §2), its text line, and when a row last
changed."""

import json
import re
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from portal.models import JobRun, OutboxEvent
from portal.services import outbox
from tests.commands import run_command
from tests.outbox_helpers import config, make_events, reload
from tests.seed import ago

pytestmark = pytest.mark.django_db


def dispatch_summary():
    result = run_command("portal_dispatch", "--json")
    return result.code, json.loads(result.out)


def test_the_json_summary_names_the_job_and_its_outcome(runner_settings, runner):
    """A monitor reads ``job`` and ``outcome`` from the cron line: ``ok`` when every event
    went out, ``partial`` (exit 1) when one gave up."""
    make_events(2)
    code, summary = dispatch_summary()
    assert (code, summary["job"], summary["outcome"]) == (0, "portal_dispatch", JobRun.Outcome.OK)
    assert summary["delivered"] == 2

    runner_settings.PORTAL_OUTBOX_MAX_ATTEMPTS = 1
    runner.set_mode("error", status=500)
    make_events(1)
    code, summary = dispatch_summary()
    assert (code, summary["outcome"]) == (1, JobRun.Outcome.PARTIAL)
    assert (summary["delivered"], summary["gave_up"]) == (0, 1)


def test_the_text_line_puts_each_count_in_its_place(runner_settings, runner):
    """Without ``--json`` the operator reads one line: three delivered, one retried and two
    given up must read as such, not as each other's numbers."""
    make_events(3, due=ago(minutes=3))
    make_events(1, due=ago(minutes=2))
    make_events(2, due=ago(minutes=1), attempts=3)  # the fourth and last attempt
    runner.set_mode("error", status=500)
    runner.script("ok", "ok", "ok")
    result = run_command("portal_dispatch")
    assert result.code == 1
    assert re.fullmatch(
        r"portal_dispatch: delivered 3, retried 1, gave up 2, released 0, lost lease 0 "
        r"\(drained, \d+ ms\)\n?",
        result.out,
    ), result.out


def test_the_text_line_counts_events_handed_back_apart_from_lost_leases(runner_settings, runner):
    """A run out of time hands its unsent claimed events back: the line says ``released 2``
    and ``time``, with no lease lost."""
    runner_settings.PORTAL_RUNNER_TIMEOUT_SECONDS = 0.5
    runner.set_mode("hang")
    make_events(3)
    result = run_command("portal_dispatch", "--max-seconds", "0.2")
    assert result.code == 0, result.err
    assert re.fullmatch(
        r"portal_dispatch: delivered 0, retried 1, gave up 0, released 2, lost lease 0 "
        r"\(time, \d+ ms\)\n?",
        result.out,
    ), result.out


def test_each_recorded_outcome_stamps_the_rows_update_time(runner_settings):
    """The status page shows when a failed or retried event last changed: the time its
    outcome was written, not the time it was claimed before a long request."""
    delivered, retried = make_events(2)
    [gave_up] = make_events(1, attempts=3)  # the fourth and last attempt
    claimed_at = timezone.now()
    with time_machine.travel(claimed_at, tick=False) as clock:
        cfg = config()
        claim = outbox.claim_due(cfg)
        clock.shift(timedelta(seconds=30))
        failures = [
            outbox.Failure(reload(event), outbox.SendOutcome(ok=False, status=500))
            for event in (retried, gave_up)
        ]
        result = outbox.DispatchResult()
        outbox.record_outcomes(claim, [reload(delivered)], failures, cfg, result)
    assert (result.delivered, result.retried, result.gave_up) == (1, 1, 1)
    rows = {row.pk: row for row in OutboxEvent.objects.all()}
    assert [rows[e.pk].status for e in (delivered, retried, gave_up)] == [
        "delivered",
        "pending",
        "failed",
    ]
    assert {row.updated_at for row in rows.values()} == {claimed_at + timedelta(seconds=30)}
