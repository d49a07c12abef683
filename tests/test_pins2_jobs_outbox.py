"""Pins for the jobs area, second round (issue #31): the HTTP client when the peer stops
reading, and a dispatch run's bookkeeping and summary, against real peers on loopback."""

import gc
import http.client
import io
import json
import time
import warnings

import pytest

from portal.httpclient import KeepAliveConnection
from portal.services.outbox import dispatch
from tests.commands import run_command
from tests.outbox_helpers import SECRET, make_events, point_at_runner
from tests.peers import LoopbackServer, read_head
from tests.runner import RunnerServer

pytestmark = pytest.mark.django_db


class NeverReads(LoopbackServer):
    """Accepts a connection, reads nothing and answers nothing until the test ends."""

    def answer(self, conn):
        while not self._stop.is_set():
            time.sleep(0.02)


class Zeros(io.RawIOBase):
    def __init__(self, size):
        self.left = size

    def readable(self):
        return True

    def read(self, size=-1):
        size = self.left if size < 0 else min(size, self.left)
        self.left -= size
        return b"\0" * size


@pytest.mark.parametrize("streamed", [True, False], ids=["file-body", "bytes-body"])
def test_a_send_timeout_fails_the_exchange_before_any_waiting(streamed):
    """A peer that stops reading: the body cannot be sent within the deadline. That is a
    timeout of the exchange, not an early answer: ``while_waiting`` (work done while the
    server works on a sent request) never runs, and the call ends near its deadline."""
    size = 256 << 20 if streamed else 64 << 20
    waited = []
    with NeverReads() as peer:
        connection = KeepAliveConnection(
            "http", "127.0.0.1", peer.port, timeout=0.3, blocksize=65536
        )
        body = (lambda: Zeros(size)) if streamed else b"\0" * size
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=rf"127.0.0.1:{peer.port} did not answer within"):
            connection.exchange(
                "PUT",
                "/",
                headers={"Content-Length": str(size)},
                body=body,
                while_waiting=lambda: waited.append(time.monotonic()),
            )
        took = time.monotonic() - started
        connection.close()
    assert waited == []
    assert 0.25 <= took < 2


@pytest.fixture
def slow_runner(settings, portal_storage):
    with RunnerServer("ok", secret=SECRET, delay=0.3) as runner:
        point_at_runner(settings, runner)
        yield runner


def test_a_delivery_is_logged_while_the_next_request_is_in_flight(slow_runner, caplog):
    """The bookkeeping of a delivered event costs no wall time: its ``outbox.dispatched``
    line is written while the runner works on the next request, not after the batch."""
    make_events(2)
    caplog.set_level("INFO", logger="portal.services.outbox")
    result = dispatch.dispatch_due(dispatch.DispatchConfig.from_settings())
    assert result.delivered == 2
    first, second = slow_runner.requests
    logged = {
        r.event_id: r.created
        for r in caplog.records
        if r.__dict__.get("event") == "outbox.dispatched"
    }
    assert set(logged) == {first.event_id, second.event_id}
    # The runner answers the second request 0.3 s after it arrived; the first's line is
    # written before that answer.
    assert logged[first.event_id] < second.received_at + slow_runner.delay - 0.05


def test_a_run_past_its_time_between_batches_says_time(slow_runner):
    make_events(1)
    report = dispatch.run_dispatch(max_seconds=0.1)
    assert report.summary["delivered"] == 1
    assert report.summary["stopped"] == "time"
    assert report.exit_code == 0


def test_a_run_with_nothing_due_says_drained(slow_runner):
    ran = run_command("portal_dispatch", "--json")
    assert ran.code == 0, ran.err
    summary = json.loads(ran.out)
    assert summary["job"] == "portal_dispatch" and summary["stopped"] == "drained"
    assert summary["delivered"] == 0 and 0 <= summary["duration_ms"] < 5000


def test_the_runner_sees_the_dispatchers_user_agent(slow_runner):
    make_events(1)
    dispatch.run_dispatch()
    [request] = slow_runner.requests
    assert request.headers["user-agent"] == "ingest-portal-dispatch/1"
    assert request.headers["content-type"] == "application/json"


def test_a_dispatch_run_closes_its_connection_to_the_runner(slow_runner):
    """The keep-alive connection is closed by the run, not left to the garbage collector
    (which would warn of an unclosed socket)."""
    make_events(1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        result = dispatch.dispatch_due(dispatch.DispatchConfig.from_settings())
        gc.collect()
    assert result.delivered == 1
    to_runner = str(slow_runner.port)
    assert [str(w.message) for w in caught if to_runner in str(w.message)] == []


class CloseThenDrop(LoopbackServer):
    """Answers the first connection's request with ``Connection: close``; every later
    connection is closed without an answer."""

    def answer(self, conn):
        read_head(conn)
        if self.connections == 1:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")


def test_a_fresh_connection_that_drops_is_not_tried_again():
    """Only a reused keep-alive connection may have gone stale: a drop on a connection
    opened for this request is the peer's answer, and the request is not sent twice."""
    with CloseThenDrop() as peer:
        connection = KeepAliveConnection("http", "127.0.0.1", peer.port, timeout=2)
        first = connection.exchange("POST", "/", headers={}, body=b"{}")
        assert first.body == b"ok"
        with pytest.raises(http.client.RemoteDisconnected):
            connection.exchange("POST", "/", headers={}, body=b"{}")
        connection.close()
        assert peer.connections == 2


class SlowFirst(LoopbackServer):
    """Answers the first connection after a second, every later one at once."""

    def answer(self, conn):
        read_head(conn)
        if self.connections == 1:
            time.sleep(1.0)
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n{self.connections}".encode())


def test_after_a_timeout_the_next_exchange_starts_afresh():
    """The connection that timed out still owes an answer: the next exchange must not
    inherit it (nor fail on its half-finished state) but open a new connection."""
    with SlowFirst() as peer:
        connection = KeepAliveConnection("http", "127.0.0.1", peer.port, timeout=0.3)
        with pytest.raises(TimeoutError):
            connection.exchange("GET", "/", headers={})
        answer = connection.exchange("GET", "/", headers={}, timeout=2)
        connection.close()
    assert (answer.status, answer.body) == (200, b"2")


@pytest.mark.postgres
def test_a_claim_skips_the_rows_another_dispatcher_holds(transactional_db, postgres_only, settings):
    """PostgreSQL: a row locked by another claim is skipped at once, not waited for."""
    from portal.models import OutboxEvent
    from tests.fixtures import row_locked

    settings.PORTAL_RUNNER_ENDPOINT = "http://127.0.0.1:9/"
    events = make_events(3)
    with row_locked(OutboxEvent.objects.filter(pk=events[0].pk)):
        started = time.monotonic()
        claim = dispatch.claim_due(dispatch.DispatchConfig.from_settings())
        took = time.monotonic() - started
    assert {e.id for e in claim.events} == {e.pk for e in events[1:]}
    assert took < 2
