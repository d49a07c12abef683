"""Pins for the jobs area, third round (issue #31): what the dispatcher counts as a
delivery and how a run records it, against a real runner on loopback."""

import base64
import types
from datetime import timedelta
from urllib.parse import unquote

import pytest
from django.db.models import F
from django.utils import timezone

from portal.models import JobRun, OutboxEvent
from portal.services.outbox import dispatch
from tests.outbox_helpers import SECRET, config, make_events, point_at_runner, reload
from tests.peers import LoopbackServer, read_head
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


class EchoesCredentials(LoopbackServer):
    """A broken runner: its status line echoes the request's Basic token, the decoded
    credentials, the URL's password as written and decoded, and the shared secret (a peer
    may know them all)."""

    def __init__(self, password):
        super().__init__()
        self.password = password
        self.authorization = None

    def answer(self, conn):
        head = read_head(conn)
        headers = dict(
            line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line
        )
        self.authorization = headers["Authorization"]
        token = self.authorization.removeprefix("Basic ")
        plain = base64.b64decode(token).decode()
        decoded = unquote(self.password)
        echo = f"garbage {token} {plain} {self.password} {decoded} {SECRET}\r\n\r\n"
        conn.sendall(echo.encode())


def test_credentials_a_runner_echoes_back_are_redacted_from_last_error(settings):
    """``last_error`` is shown on /status: whatever the runner sends back, the URL's
    credentials (decoded, raw or as the Basic token), the password alone either way, and the
    secret never reach it."""
    password = "url-p%40ss-9c1e"  # percent-encoded in the URL: "url-p@ss-9c1e" on the wire
    with EchoesCredentials(password) as peer:
        url = f"http://ops:{password}@127.0.0.1:{peer.port}/hooks"
        point_at_runner(settings, types.SimpleNamespace(url=url))
        [event] = make_events(1)
        result = dispatch.dispatch_due(config())
    assert result.retried == 1
    assert peer.authorization == "Basic " + base64.b64encode(b"ops:url-p@ss-9c1e").decode()
    last_error = reload(event).last_error
    assert last_error.rstrip() == "BadStatusLine: garbage" + " [redacted]" * 5


@pytest.mark.parametrize("attempts_before, counted", [(0, "retried"), (3, "gave_up")])
def test_a_limit_counts_failed_attempts_too(runner_settings, runner, attempts_before, counted):
    """``--limit N`` bounds the requests a run makes, whatever their outcome: against a
    failing runner it stops after N, and the other events are not tried."""
    runner.set_mode("error")
    make_events(5, attempts=attempts_before)
    result = dispatch.dispatch_due(config(), limit=2)
    assert (getattr(result, counted), result.stopped, len(runner.requests)) == (2, "limit", 2)
    attempts = sorted(OutboxEvent.objects.values_list("attempts", flat=True))
    assert attempts == [attempts_before] * 3 + [attempts_before + 1] * 2


class TakenOverRunner(RunnerServer):
    """Answers 200, but before it answers another dispatcher has claimed the event afresh
    (its lease moved on): the delivery is ours no longer."""

    def _record(self, path, headers, body, mode, client_port):
        from django.db import connection

        super()._record(path, headers, body, mode, client_port)
        try:
            OutboxEvent.objects.filter(pk=headers["X-Portal-Event-Id"]).update(
                next_attempt_at=F("next_attempt_at") + timedelta(seconds=1)
            )
        finally:
            connection.close()


def test_a_limit_counts_attempts_whose_lease_was_lost(settings, transactional_db):
    """An attempt whose row another dispatcher took over still counts against ``--limit``:
    the run stops after N requests, not after N recorded deliveries."""
    with TakenOverRunner("ok", secret=SECRET) as runner:
        point_at_runner(settings, runner)
        make_events(5)
        result = dispatch.dispatch_due(config(), limit=2)
    assert (result.delivered, result.lost_lease, result.stopped) == (0, 2, "limit")
    assert len(runner.requests) == 2


def test_the_runner_reads_the_event_from_its_headers(runner_settings, runner):
    """The runner routes and deduplicates by the headers (docs/api.md) without parsing the
    body: id, type and attempt number each under its documented name."""
    [event] = make_events(1, attempts=2)
    dispatch.dispatch_due(config())
    [request] = runner.requests
    assert request.headers["x-portal-event-id"] == str(event.pk)
    assert request.headers["x-portal-event-type"] == "file.uploaded"
    assert request.headers["x-portal-attempt"] == "3"
    assert request.signature_ok


def test_the_recorded_backlog_stops_counting_at_its_cap(runner_settings, runner):
    """/status draws the backlog per run from the run's counts; counting is capped at
    ``BACKLOG_CAP`` (10,000) so that a huge backlog costs a bounded query every minute."""
    make_events(dispatch.BACKLOG_CAP + 1, due=timezone.now() + timedelta(hours=1))
    dispatch.run_dispatch()
    [run] = JobRun.objects.filter(job="portal_dispatch")
    assert run.counts[dispatch.BACKLOG_KEY] == 10_000
    assert runner.requests == []


class LongWinded(LoopbackServer):
    """Answers every request with ``line`` as its status line, then closes."""

    def __init__(self, line):
        super().__init__()
        self.line = line

    def answer(self, conn):
        read_head(conn)
        conn.sendall(self.line.encode() + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


@pytest.mark.parametrize(
    "line, last_error",
    [
        ("HTTP/1.1 503 " + "r" * 100, "HTTP 503 " + "r" * 60),  # the reason: 60 characters
        ("garbage " + "g" * 300, "BadStatusLine: garbage " + "g" * 152),  # the error: 160
    ],
    ids=["reason", "error"],
)
def test_a_long_answer_is_cut_short_in_last_error(settings, line, last_error):
    """A runner's long reason phrase or a long error text is cut to a readable length
    in ``last_error`` (shown on /status), well below the column's 200 characters."""
    with LongWinded(line) as peer:
        point_at_runner(settings, types.SimpleNamespace(url=f"http://127.0.0.1:{peer.port}/"))
        [event] = make_events(1)
        dispatch.dispatch_due(config())
    assert reload(event).last_error == last_error
