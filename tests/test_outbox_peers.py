"""Outbox delivery to runners that misbehave: a trickled answer, TLS that cannot work.

In-process against real servers on loopback; the same faults through the command are in
``test_dispatch.py``.
"""

import logging
import socket
import time

import pytest

from portal.httpclient import KeepAliveConnection
from portal.services import outbox
from tests.outbox_helpers import SECRET, config, make_events, reload
from tests.peers import BadRequestServer, self_signed_certificate
from tests.runner import RunnerServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def certificate(tmp_path):
    return self_signed_certificate(tmp_path)


@pytest.fixture
def tls_runner(certificate):
    with RunnerServer("ok", secret=SECRET, tls=certificate) as server:
        yield server


def test_a_trickled_answer_is_cut_at_the_delivery_deadline(runner, runner_settings):
    runner_settings.PORTAL_RUNNER_TIMEOUT_SECONDS = 0.6
    runner.set_mode("trickle")
    runner.trickle_interval = 0.2  # each read comes well within the timeout
    [event] = make_events(1)

    started = time.monotonic()
    result = outbox.dispatch_due(config())
    elapsed = time.monotonic() - started

    assert (result.retried, result.lost_lease) == (1, 0)
    assert elapsed < 0.6 + 0.5, f"one delivery took {elapsed:.1f} s"
    event = reload(event)
    assert (event.status, event.attempts) == ("pending", 1)
    assert event.last_error == (
        f"TimeoutError: 127.0.0.1:{runner.port} did not answer within 0.6 s"
    )


def test_a_run_ends_within_max_seconds_and_one_delivery_deadline(runner, runner_settings):
    runner_settings.PORTAL_RUNNER_TIMEOUT_SECONDS = 0.5
    runner.set_mode("trickle")
    runner.trickle_interval = 0.1
    make_events(3)

    started = time.monotonic()
    result = outbox.dispatch_due(config(), max_seconds=0.2)
    elapsed = time.monotonic() - started

    assert (result.retried, result.released, result.stopped) == (1, 2, "time")
    assert elapsed < 0.2 + 0.5 + 0.5, f"the run took {elapsed:.1f} s"


def test_the_lease_outlives_a_whole_delivery(runner_settings):
    cfg = config()
    assert cfg.lease_seconds >= cfg.timeout + outbox.LEASE_MARGIN_SECONDS


def test_a_self_signed_runner_certificate_is_named(tls_runner, runner_settings, caplog):
    runner_settings.PORTAL_RUNNER_ENDPOINT = tls_runner.url
    [event] = make_events(1)

    with caplog.at_level(logging.WARNING, logger="portal.services.outbox"):
        result = outbox.dispatch_due(config())

    assert result.retried == 1
    last_error = reload(event).last_error
    assert last_error.startswith(f"TLSFailed: TLS with 127.0.0.1:{tls_runner.port}: ")
    assert "certificate verify failed" in last_error
    assert "certificate verify failed" in caplog.text
    assert tls_runner.requests == []


def test_a_trusted_https_runner_gets_the_event(
    tls_runner, runner_settings, certificate, monkeypatch
):
    monkeypatch.setenv("SSL_CERT_FILE", certificate[0])
    runner_settings.PORTAL_RUNNER_ENDPOINT = tls_runner.url
    [event] = make_events(1)

    assert outbox.dispatch_due(config()).delivered == 1
    assert tls_runner.counts() == {str(event.pk): 1}


def test_an_https_url_at_a_plain_http_server_names_the_protocol(runner_settings):
    with BadRequestServer() as plain:
        runner_settings.PORTAL_RUNNER_ENDPOINT = f"https://127.0.0.1:{plain.port}/hooks"
        [event] = make_events(1)
        result = outbox.dispatch_due(config())

    assert result.retried == 1
    last_error = reload(event).last_error
    assert last_error.startswith(f"TLSFailed: TLS handshake with 127.0.0.1:{plain.port} failed")
    assert last_error.endswith("does the server speak https on that port?")


def test_an_https_url_at_a_silent_server_names_the_handshake(runner_settings):
    runner_settings.PORTAL_RUNNER_TIMEOUT_SECONDS = 0.3
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts (backlog), never answers
        port = silent.getsockname()[1]
        runner_settings.PORTAL_RUNNER_ENDPOINT = f"https://127.0.0.1:{port}/hooks"
        [event] = make_events(1)
        outbox.dispatch_due(config())

    assert reload(event).last_error == (
        f"TimeoutError: TLS handshake with 127.0.0.1:{port} did not finish within 0.3 s: "
        "does the server speak https on that port?"
    )


@pytest.mark.parametrize(("scheme", "port"), [("https", 443), ("http", 80)])
def test_a_url_without_a_port_uses_its_schemes(scheme, port):
    assert KeepAliveConnection(scheme, "runner.example", None, timeout=1).port == port
