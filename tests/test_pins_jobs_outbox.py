"""Pins for the jobs area (issue #31): the outbox and dispatch against a real runner on
loopback, the HTTP client against misbehaving peers, the database gate."""

import contextlib
import io
import logging
import socket
import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from portal.httpclient import KeepAliveConnection, backoff_delay, http_url_problem
from portal.models import JobRun, OutboxEvent
from portal.services import outbox
from portal.services.outbox import dispatch
from tests.commands import run_command
from tests.outbox_helpers import make_events, reload, stored_file
from tests.peers import LoopbackServer, read_head
from tests.seed import (
    seed_owner,
)

pytestmark = pytest.mark.django_db


def events_named(caplog, name):
    return [r for r in caplog.records if getattr(r, "event", None) == name]


@pytest.fixture
def owner(db):
    return seed_owner("pins-owner")


def test_file_uploaded_payload_fields(portal_storage, owner):
    file = stored_file(owner)
    moment = timezone.now()
    with time_machine.travel(moment, tick=False):
        event = outbox.enqueue_file_uploaded(file)
    assert event.next_attempt_at == moment
    assert event.payload["occurred_at"] == moment.isoformat()
    assert "T" in event.payload["occurred_at"]
    assert event.payload["file"]["size_bytes"] == 1234
    assert event.payload["actor"] == {"user_id": owner.pk, "username": owner.username}
    assert outbox.enqueue_file_uploaded(file).pk == event.pk  # one event per file


def test_the_endpoints_query_string_is_kept(runner, runner_settings):
    runner_settings.PORTAL_RUNNER_ENDPOINT = runner.url + "?tenant=a&x=1"
    make_events(1)
    assert outbox.dispatch_due(outbox.DispatchConfig.from_settings()).delivered == 1
    assert runner.requests[0].path == "/hooks/portal?tenant=a&x=1"


@pytest.mark.parametrize("status", [302, 404])
def test_a_redirect_or_client_error_is_a_failed_delivery(runner, runner_settings, status):
    runner.set_mode("error", status=status)
    [event] = make_events(1)
    result = outbox.dispatch_due(outbox.DispatchConfig.from_settings())
    assert (result.delivered, result.retried) == (0, 1)
    event = reload(event)
    assert (event.status, event.attempts) == ("pending", 1)
    assert event.last_error == {302: "HTTP 302 Found", 404: "HTTP 404 Not Found"}[status]


def test_an_event_due_exactly_now_is_claimed(runner_settings):
    moment = timezone.now()
    [event] = make_events(1, due=moment)
    [later] = make_events(1, due=moment + timedelta(microseconds=1))
    with time_machine.travel(moment, tick=False):
        claim = outbox.claim_due(outbox.DispatchConfig.from_settings())
    assert [e.id for e in claim.events] == [event.pk]
    assert reload(later).status == "pending"


def test_requeue_of_no_ids_requeues_nothing(runner_settings):
    [failed] = make_events(1, status=OutboxEvent.Status.FAILED, attempts=4)
    assert outbox.requeue_failed([]) == 0
    assert reload(failed).status == "failed"
    assert outbox.requeue_failed([failed.pk]) == 1
    assert (reload(failed).status, reload(failed).attempts) == ("pending", 0)


def test_the_backlog_counts_pending_and_sending_events(runner_settings):
    later = timezone.now() + timedelta(hours=1)
    make_events(2, due=later)
    make_events(3, due=later, status=OutboxEvent.Status.SENDING)
    make_events(1, status=OutboxEvent.Status.DELIVERED)
    make_events(4, due=later, status=OutboxEvent.Status.FAILED)
    report = outbox.run_dispatch()
    assert report.exit_code == 0
    [run] = JobRun.objects.filter(job="portal_dispatch")
    assert run.counts[dispatch.BACKLOG_KEY] == 2 + 3  # each kind counted differently
    assert run.outcome == "ok"


def test_a_limited_run_claims_no_more_than_its_limit(runner, runner_settings):
    make_events(5)
    result = outbox.dispatch_due(outbox.DispatchConfig.from_settings(), limit=2)
    assert (result.delivered, result.released, result.stopped) == (2, 0, "limit")
    statuses = sorted(OutboxEvent.objects.values_list("status", "attempts"))
    assert statuses == [("delivered", 1)] * 2 + [("pending", 0)] * 3


@pytest.mark.parametrize("room, sent", [(-0.5, 0), (1.0, 2)])
def test_a_batch_stops_a_delivery_deadline_before_its_lease_ends(
    runner, runner_settings, room, sent
):
    """A claim with less than one delivery deadline plus the margin left sends nothing and
    hands its events back; with more it sends them."""
    import time

    from portal.services.outbox.client import RunnerClient

    make_events(2)
    config = outbox.DispatchConfig.from_settings()
    claim = outbox.claim_due(config)
    budget = config.timeout + outbox.LEASE_MARGIN_SECONDS
    claim.expires_monotonic = time.monotonic() + budget + room
    result = outbox.DispatchResult()
    client = RunnerClient(config)
    try:
        assert dispatch._send_batch(client, claim, config, None, result) is True
    finally:
        client.close()
    assert (len(runner.requests), result.delivered, result.released) == (sent, sent, 2 - sent)
    assert sorted(OutboxEvent.objects.values_list("status", flat=True)) == (
        ["delivered"] * sent + ["pending"] * (2 - sent)
    )


def test_a_lease_is_twice_a_delivery_deadline_and_margin(runner_settings):
    runner_settings.PORTAL_RUNNER_TIMEOUT_SECONDS = 7.0
    assert outbox.DispatchConfig.from_settings().lease_seconds == 24.0


def test_a_dispatched_event_logs_its_attempt(runner, runner_settings, caplog):
    caplog.set_level(logging.INFO, logger="portal")
    [event] = make_events(1, attempts=2)
    outbox.dispatch_due(outbox.DispatchConfig.from_settings())
    [record] = events_named(caplog, "outbox.dispatched")
    assert (record.event_id, record.attempt) == (str(event.pk), 3)
    assert record.getMessage() == "delivered file.uploaded (HTTP 200)"


def test_dispatch_text_names_the_requeued_events(runner, runner_settings):
    make_events(1, status=OutboxEvent.Status.FAILED, attempts=4)
    result = run_command("portal_dispatch", "--retry-failed")
    assert result.code == 0
    assert result.out.startswith("portal_dispatch: requeued 1, delivered 1, retried 0,")
    plain = run_command("portal_dispatch")
    assert plain.out.startswith("portal_dispatch: delivered 0, retried 0, gave up 0,")


@pytest.mark.parametrize(
    "url, problem",
    [
        ("http://portal:8000/api", ""),
        ("https://portal/", ""),
        ("http://portal/a b", "must be ASCII without spaces (percent-encode other characters)"),
        ("http://portal/\u00e9", "must be ASCII without spaces (percent-encode other characters)"),
        ("http://portal:0/", "must have a numeric port from 1 to 65535"),
        ("http://portal:65536/", "must have a numeric port from 1 to 65535"),
        ("ftp://portal/", "must be an http:// or https:// URL with a host"),
        ("http:///path", "must be an http:// or https:// URL with a host"),
        ("http://[::1/", "must be an http:// or https:// URL with a host"),
    ],
)
def test_http_url_problem(url, problem):
    assert http_url_problem(url) == problem


def test_backoff_doubles_with_equal_jitter_up_to_the_cap():
    def delay(n, r):
        return backoff_delay(n, base=10, cap=60, rand=lambda: r)

    assert [delay(n, 0.0) for n in range(5)] == [5, 10, 20, 30, 30]
    assert [delay(n, 1.0) for n in range(5)] == [10, 20, 40, 60, 60]
    assert delay(0, 0.5) == 7.5
    assert delay(10_000, 1.0) == 60


def test_a_connection_without_a_port_takes_its_schemes():
    assert KeepAliveConnection("https", "runner", None, timeout=1).port == 443
    assert KeepAliveConnection("http", "runner", None, timeout=1).port == 80
    assert KeepAliveConnection("https", "runner", 8443, timeout=1).port == 8443


class EarlyAnswer(LoopbackServer):
    """Answers 413 after the headers, never reads the body, and closes."""

    def answer(self, conn):
        read_head(conn)
        conn.sendall(b"HTTP/1.1 413 Too Large\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno")
        time.sleep(0.1)


class SlowReader(LoopbackServer):
    """Reads a request's body a little at a time and never answers."""

    CONNECTION_TIMEOUT = 10

    def answer(self, conn):
        deadline = time.monotonic() + 6
        while not self._stop.is_set() and time.monotonic() < deadline and conn.recv(8192):
            time.sleep(0.02)


class Zeros(io.RawIOBase):
    def __init__(self, size):
        self.left = size

    def read(self, size=-1):
        size = self.left if size < 0 else min(size, self.left)
        self.left -= size
        return b"\0" * size


class Silent(LoopbackServer):
    """Accepts a connection and says nothing (no TLS handshake)."""

    def answer(self, conn):
        while not self._stop.is_set():
            time.sleep(0.02)


def test_an_answer_before_the_body_is_read_is_returned():
    body = io.BytesIO(b"x" * (32 << 20))
    with EarlyAnswer() as peer:
        connection = KeepAliveConnection("http", "127.0.0.1", peer.port, timeout=10)
        answer = connection.exchange(
            "PUT", "/", headers={"Content-Length": str(32 << 20)}, body=lambda: body
        )
        connection.close()
    assert (answer.status, answer.body) == (413, b"no")
    assert body.closed  # a file-like body is closed once sent


def test_a_peer_that_reads_slowly_cannot_stretch_the_deadline():
    size = 1 << 30
    with SlowReader() as peer:
        connection = KeepAliveConnection(
            "http", "127.0.0.1", peer.port, timeout=0.5, blocksize=65536
        )
        started = time.monotonic()
        with pytest.raises(
            TimeoutError, match=rf"127.0.0.1:{peer.port} did not answer within 0\.5 s"
        ):
            connection.exchange(
                "PUT", "/", headers={"Content-Length": str(size)}, body=lambda: Zeros(size)
            )
        assert time.monotonic() - started < 3


def test_a_full_backlog_is_a_connect_timeout():
    server = socket.create_server(("127.0.0.1", 0), backlog=0)
    held = []
    try:
        for _ in range(3):  # fill the accept queue: the next SYN is dropped
            pending = socket.socket()
            pending.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                pending.connect(server.getsockname())
            held.append(pending)
        time.sleep(0.05)
        port = server.getsockname()[1]
        connection = KeepAliveConnection("http", "127.0.0.1", port, timeout=0.3)
        with pytest.raises(TimeoutError, match=rf"could not connect to 127.0.0.1:{port} within"):
            connection.exchange("GET", "/", headers={})
    finally:
        for pending in held:
            pending.close()
        server.close()


def test_a_silent_https_peer_is_a_tls_timeout():
    with Silent() as peer:
        connection = KeepAliveConnection("https", "127.0.0.1", peer.port, timeout=0.3)
        with pytest.raises(TimeoutError, match=r"TLS handshake with 127.0.0.1:\d+ did not finish"):
            connection.exchange("GET", "/", headers={})


def test_a_cors_preflight_passes_a_closed_gate(client, monkeypatch):
    from django.db import OperationalError

    from portal import dbgate

    monkeypatch.setattr(dbgate, "gate", dbgate.DatabaseGate(retry_seconds=60))
    dbgate.gate.failed(OperationalError("down"))
    url = "/api/v1/uploads/sessions"
    assert client.get(url).status_code == 503
    assert client.options(url).status_code != 503
    assert client.head(url).status_code == 503


def test_a_connect_error_that_is_no_database_error_raises_and_closes_the_gate(client, monkeypatch):
    from portal import dbgate

    monkeypatch.setattr(dbgate, "gate", dbgate.DatabaseGate(retry_seconds=60))

    def broken(alias="default"):
        raise RuntimeError("bug in the driver")

    monkeypatch.setattr(dbgate, "connect", broken)
    with pytest.raises(RuntimeError, match="bug in the driver"):
        client.get("/api/v1/uploads/sessions")
    assert not dbgate.gate.admit()
