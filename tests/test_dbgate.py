"""``portal.dbgate.DatabaseGate``: refuse while the database is known down, one retry at a time.

The gate in a real server, with a database that hangs: ``tests/test_probes_under_load.py``.
"""

import logging

import pytest
import time_machine
from django.db import InterfaceError, OperationalError

from portal import dbgate
from portal.dbgate import DatabaseGate
from tests.health_helpers import database_down

T0 = "2030-01-01 10:00:00Z"


def events(caplog, name):
    return [r for r in caplog.records if getattr(r, "event", None) == name]


def test_the_gate_is_open_while_the_database_answers():
    gate = DatabaseGate(retry_seconds=2)
    assert [gate.admit() for _ in range(3)] == [True, True, True]


def test_after_a_failure_requests_are_refused_then_one_retries(caplog):
    caplog.set_level(logging.INFO, logger="portal.dbgate")
    gate = DatabaseGate(retry_seconds=2)
    with time_machine.travel(T0, tick=False) as clock:
        assert gate.admit()
        gate.failed(OperationalError("connection timeout expired"))
        assert not gate.admit()
        clock.shift(1.9)
        assert not gate.admit()
        clock.shift(0.2)
        assert [gate.admit() for _ in range(4)] == [True, False, False, False]
        gate.failed(OperationalError("connection timeout expired"))
        assert not gate.admit()
        clock.shift(2.1)
        assert gate.admit()
        gate.succeeded()
        assert [gate.admit() for _ in range(3)] == [True, True, True]
    [down] = events(caplog, "database.unavailable")
    assert down.levelno == logging.WARNING
    assert (down.error_type, down.error) == ("OperationalError", "connection timeout expired")
    assert len(events(caplog, "database.recovered")) == 1


def test_requests_that_fail_together_log_the_outage_once(caplog):
    caplog.set_level(logging.INFO, logger="portal.dbgate")
    gate = DatabaseGate(retry_seconds=2)
    admitted = [gate.admit() for _ in range(4)]
    for _ in admitted:
        gate.failed(OperationalError("refused"))
    assert len(events(caplog, "database.unavailable")) == 1
    assert not events(caplog, "database.recovered")


def test_a_clock_stepped_back_does_not_hold_the_gate_shut():
    gate = DatabaseGate(retry_seconds=2)
    with time_machine.travel(T0, tick=False) as clock:
        gate.failed(OperationalError("refused"))
        clock.shift(-3600)
        assert gate.admit()


@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_a_connection_that_fails_either_way_is_503_and_closes_the_gate(
    client, db, monkeypatch, error
):
    """psycopg raises ``InterfaceError`` for a connection that broke under it: that is the
    database being unavailable too, not a server error."""
    monkeypatch.setattr(dbgate, "gate", DatabaseGate(retry_seconds=2))

    def broken(alias="default"):
        raise error("connection already closed")

    monkeypatch.setattr(dbgate, "connect", broken)

    response = client.get("/api/v1/uploads/sessions/00000000-0000-0000-0000-000000000000")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
    assert not dbgate.gate.admit()


def test_the_request_whose_retry_connects_opens_the_gate_for_those_after_it(
    client, db, monkeypatch
):
    monkeypatch.setattr(dbgate, "gate", DatabaseGate(retry_seconds=2))
    down = database_down(monkeypatch)
    url = "/api/v1/uploads/sessions/00000000-0000-0000-0000-000000000000"
    with time_machine.travel(T0, tick=False) as clock:
        assert client.get(url).status_code == 503
        down[0] = False  # the database is back; the gate does not know yet
        assert client.get(url).status_code == 503
        clock.shift(2.1)
        statuses = [client.get(url).status_code for _ in range(3)]
    assert statuses == [401, 401, 401]  # past the gate: the view's answer (no token)
