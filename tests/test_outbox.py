"""Outbox delivery (``portal.services.outbox``) against a real runner on loopback.

In-process service calls, so time-machine can move the clock through the backoff; the
command and crash tests are in ``test_dispatch.py``.
"""

import logging
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from portal.models import OutboxEvent
from portal.services import outbox
from tests.conftest import ROOT, free_port
from tests.outbox_helpers import SECRET, config, make_events, reload, stored_file


def dispatch_at(moment, **kwargs):
    with time_machine.travel(moment):
        return outbox.dispatch_due(config(), **kwargs)


# --- delivery ------------------------------------------------------------------------------


def test_delivers_signed_event_and_marks_it_delivered(db, runner, runner_settings, user):
    event = outbox.enqueue_file_uploaded(stored_file(user))

    result = outbox.dispatch_due(config())

    assert (result.delivered, result.retried, result.gave_up) == (1, 0, 0)
    [request] = runner.requests
    assert request.signature_ok
    assert request.path == "/hooks/portal"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-portal-event-id"] == str(event.pk)
    assert request.headers["x-portal-event-type"] == "file.uploaded"
    assert request.headers["x-portal-signature"] == outbox.sign(request.body, SECRET)
    assert request.json() == event.payload
    assert request.json()["event_id"] == str(event.pk)
    assert SECRET not in request.body.decode()
    event = reload(event)
    assert event.status == OutboxEvent.Status.DELIVERED
    assert event.delivered_at is not None
    assert (event.attempts, event.last_error) == (1, "")


def test_one_keep_alive_connection_serves_the_whole_run(db, runner, runner_settings):
    make_events(250)

    result = outbox.dispatch_due(config())

    assert result.delivered == 250
    assert len(runner.requests) == 250
    assert len({r.client_port for r in runner.requests}) == 1


def test_events_not_yet_due_and_live_leases_are_left_alone(db, runner, runner_settings):
    later = timezone.now() + timedelta(minutes=5)
    [waiting] = make_events(1, due=later)
    [leased] = make_events(1, due=later, status=OutboxEvent.Status.SENDING)
    [done] = make_events(1, status=OutboxEvent.Status.DELIVERED)

    result = outbox.dispatch_due(config())

    assert result.attempted == 0
    assert runner.requests == []
    assert reload(waiting).status == OutboxEvent.Status.PENDING
    assert reload(leased).status == OutboxEvent.Status.SENDING
    assert reload(done).status == OutboxEvent.Status.DELIVERED


def test_a_sending_event_whose_lease_ran_out_is_delivered(db, runner, runner_settings):
    past = timezone.now() - timedelta(seconds=1)
    [orphan] = make_events(1, due=past, status=OutboxEvent.Status.SENDING, attempts=2)

    result = outbox.dispatch_due(config())

    assert result.delivered == 1
    assert runner.counts() == {str(orphan.pk): 1}
    assert runner.requests[0].headers["x-portal-attempt"] == "3"
    assert reload(orphan).status == OutboxEvent.Status.DELIVERED


def test_due_events_go_oldest_first_and_limit_stops_the_run(db, runner, runner_settings):
    now = timezone.now()
    events = [make_events(1, due=now - timedelta(minutes=m))[0] for m in (1, 5, 3, 4, 2)]

    result = outbox.dispatch_due(config(), limit=2)

    assert (result.delivered, result.stopped) == (2, "limit")
    oldest = [str(events[1].pk), str(events[3].pk)]
    assert [r.event_id for r in runner.requests] == oldest


def test_a_dropped_reused_connection_is_retried_once_on_a_fresh_one(db, runner, runner_settings):
    make_events(2)
    runner.script("ok", "drop")

    result = outbox.dispatch_due(config())

    assert result.delivered == 2
    first, dropped, retried = runner.requests
    assert [r.mode for r in runner.requests] == ["ok", "drop", "ok"]
    assert dropped.event_id == retried.event_id != first.event_id
    assert dropped.client_port == first.client_port != retried.client_port
    assert OutboxEvent.objects.get(pk=retried.event_id).attempts == 1


# --- failures and backoff ------------------------------------------------------------------


def test_retries_with_backoff_until_delivered(db, runner, runner_settings):
    runner.set_mode("error", status=503)
    [event] = make_events(1)
    t0 = timezone.now()

    first = dispatch_at(t0)
    event = reload(event)
    assert (first.delivered, first.retried) == (0, 1)
    assert event.status == OutboxEvent.Status.PENDING
    assert event.attempts == 1
    assert event.last_error == "HTTP 503 Service Unavailable"
    # base 10 s, equal jitter: between half and all of the delay
    assert t0 + timedelta(seconds=5) <= event.next_attempt_at <= t0 + timedelta(seconds=11)

    assert dispatch_at(t0 + timedelta(seconds=4)).attempted == 0  # not due yet
    assert len(runner.requests) == 1

    second_at = event.next_attempt_at + timedelta(milliseconds=1)
    dispatch_at(second_at)
    event = reload(event)
    assert event.attempts == 2
    delay = event.next_attempt_at - second_at
    assert timedelta(seconds=10) <= delay <= timedelta(seconds=21)  # 2 * base

    runner.set_mode("ok")
    third = dispatch_at(event.next_attempt_at + timedelta(milliseconds=1))
    event = reload(event)
    assert third.delivered == 1
    assert (event.status, event.attempts, event.last_error) == ("delivered", 3, "")
    assert len(runner.requests) == 3
    assert all(r.signature_ok for r in runner.requests)


def test_gives_up_after_max_attempts_and_logs_an_error(db, runner, runner_settings, caplog):
    runner.set_mode("error")
    [event] = make_events(1)
    moment = timezone.now()
    results = []
    with caplog.at_level(logging.INFO, logger="portal"):
        for _ in range(4):
            results.append(dispatch_at(moment))
            moment = reload(event).next_attempt_at + timedelta(milliseconds=1)
        assert dispatch_at(moment + timedelta(days=1)).attempted == 0

    event = reload(event)
    assert [r.gave_up for r in results] == [0, 0, 0, 1]
    assert [r.retried for r in results] == [1, 1, 1, 0]
    assert (event.status, event.attempts) == (OutboxEvent.Status.FAILED, 4)
    assert event.last_error == "HTTP 500 Internal Server Error"
    assert len(runner.requests) == 4
    gave_up = [r for r in caplog.records if getattr(r, "event", "") == "outbox.gave_up"]
    assert [(r.levelname, r.event_id, r.attempt) for r in gave_up] == [("ERROR", str(event.pk), 4)]
    failed = [r for r in caplog.records if getattr(r, "event", "") == "outbox.delivery_failed"]
    assert [r.attempt for r in failed] == [1, 2, 3]
    assert all(r.status_code == 500 and r.next_attempt_at for r in failed)


def test_backoff_is_capped_at_the_max_delay(settings, runner_settings):
    cfg = config()
    for attempts in (3, 10, 100, 10_000):
        assert 30.0 <= outbox.retry_delay(attempts, cfg) <= 60.0
    assert outbox.retry_delay(0, cfg, rand=lambda: 0.0) == 5.0
    assert outbox.retry_delay(0, cfg, rand=lambda: 1.0) == 10.0
    assert outbox.retry_delay(2, cfg, rand=lambda: 1.0) == 40.0


@pytest.mark.parametrize(
    ("mode", "error"),
    [("drop", "RemoteDisconnected"), ("hang", "TimeoutError"), ("refused", "ConnectionRefused")],
)
def test_network_failures_are_retried_with_a_short_error(db, runner, runner_settings, mode, error):
    runner_settings.PORTAL_RUNNER_TIMEOUT_SECONDS = 0.3
    if mode == "refused":
        runner_settings.PORTAL_RUNNER_ENDPOINT = f"http://127.0.0.1:{free_port()}/hooks"
    else:
        runner.set_mode(mode)
    [event] = make_events(1)

    result = outbox.dispatch_due(config())

    event = reload(event)
    assert result.retried == 1
    # A failure on a fresh connection is the runner's answer: the POST is not sent again.
    assert len(runner.requests) == (0 if mode == "refused" else 1)
    assert event.status == OutboxEvent.Status.PENDING
    assert event.attempts == 1
    assert event.last_error.startswith(error)
    assert len(event.last_error) <= 200
    assert event.next_attempt_at > timezone.now()


def test_secret_and_url_credentials_never_reach_last_error_or_logs(
    db, runner, runner_settings, caplog
):
    password = "url-password-9c1e"
    runner_settings.PORTAL_RUNNER_ENDPOINT = f"http://ops:{password}@127.0.0.1:{free_port()}/h"
    runner_settings.PORTAL_OUTBOX_MAX_ATTEMPTS = 1
    [refused] = make_events(1)

    with caplog.at_level(logging.DEBUG):
        result = outbox.dispatch_due(config())
        runner_settings.PORTAL_RUNNER_ENDPOINT = runner.url.replace("://", f"://ops:{password}@")
        outbox.requeue_failed()
        delivered = outbox.dispatch_due(config())

    assert (result.gave_up, delivered.delivered) == (1, 1)
    assert runner.requests[0].headers["authorization"].startswith("Basic ")
    text = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    for secret in (SECRET, password):
        assert secret not in text
        assert secret not in reload(refused).last_error


# --- leases --------------------------------------------------------------------------------


def test_an_outcome_is_not_recorded_over_a_newer_claim(db, runner, runner_settings):
    first, second = make_events(2)
    cfg = config()
    claim = outbox.claim_due(cfg)
    assert {e.id for e in claim.events} == {first.pk, second.pk}
    # our lease "ran out" and another dispatcher claimed and delivered both meanwhile
    OutboxEvent.objects.filter(pk=first.pk).update(status=OutboxEvent.Status.DELIVERED)
    OutboxEvent.objects.filter(pk=second.pk).update(
        next_attempt_at=claim.lease_until + timedelta(seconds=1)
    )
    result = outbox.DispatchResult()
    failure = outbox.Failure(reload(second), outbox.SendOutcome(ok=False, status=500))

    outbox.record_outcomes(claim, [reload(first)], [failure], cfg, result)

    assert (result.delivered, result.retried, result.lost_lease) == (0, 0, 2)
    assert reload(first).status == OutboxEvent.Status.DELIVERED
    second = reload(second)
    assert (second.status, second.attempts, second.last_error) == ("sending", 0, "")


def test_claim_marks_rows_sending_under_a_lease(db, runner_settings):
    make_events(3)
    cfg = config()
    before = timezone.now()

    claim = outbox.claim_due(cfg, batch_size=2)

    assert len(claim.events) == 2
    assert claim.lease_until >= before + timedelta(seconds=cfg.lease_seconds)
    rows = OutboxEvent.objects.filter(status=OutboxEvent.Status.SENDING)
    assert {r.next_attempt_at for r in rows} == {claim.lease_until}
    assert len(outbox.claim_due(cfg).events) == 1  # the third; the first two are leased


def test_time_budget_hands_unsent_claimed_events_back(db, runner, runner_settings):
    runner_settings.PORTAL_RUNNER_TIMEOUT_SECONDS = 0.5
    runner.set_mode("hang")
    make_events(3)

    result = outbox.dispatch_due(config(), max_seconds=0.2)

    assert (result.retried, result.released, result.stopped) == (1, 2, "time")
    rows = list(OutboxEvent.objects.order_by("attempts"))
    assert [(r.status, r.attempts) for r in rows] == [
        ("pending", 0),
        ("pending", 0),
        ("pending", 1),
    ]
    assert all(r.next_attempt_at <= timezone.now() for r in rows[:2])


def test_requeue_failed_resets_attempts_and_makes_events_due(db, runner_settings):
    later = timezone.now() + timedelta(days=1)
    failed = make_events(2, due=later, status=OutboxEvent.Status.FAILED, attempts=12)
    [delivered] = make_events(1, status=OutboxEvent.Status.DELIVERED, attempts=1)

    assert outbox.requeue_failed() == 2

    for event in failed:
        event = reload(event)
        assert (event.status, event.attempts) == ("pending", 0)
        assert event.next_attempt_at <= timezone.now()
    assert reload(delivered).status == OutboxEvent.Status.DELIVERED


def test_dispatch_without_an_endpoint_is_refused_with_the_variable_named(settings):
    # A bad URL is refused when the settings load, a missing secret by check portal.E005
    # (which the command runs first): tests/test_settings.py and tests/test_dispatch.py.
    settings.PORTAL_RUNNER_ENDPOINT = ""
    with pytest.raises(outbox.ConfigurationError, match="PORTAL_RUNNER_ENDPOINT is not set"):
        outbox.DispatchConfig.from_settings()


def test_the_documented_snippet_verifies_a_real_request(db, runner, runner_settings):
    readme = (ROOT / "docs" / "api.md").read_text()
    section = readme.split("<!-- section: outbox -->")[1].split("<!-- /section: outbox -->")[0]
    snippet = section.split("```python")[1].split("```")[0]
    namespace = {}
    exec(snippet, namespace)
    make_events(1)

    outbox.dispatch_due(config())

    [request] = runner.requests
    verified = namespace["verified"]
    assert verified(request.body, request.headers["x-portal-signature"], SECRET)
    assert not verified(request.body + b" ", request.headers["x-portal-signature"], SECRET)
    assert not verified(request.body, request.headers["x-portal-signature"], "other-secret")
