"""Pins for the upload area, fourth round (issue #31): the database gate's default retry
interval, its exact edge, and the length of the cause it logs."""

import logging

import time_machine
from django.db import OperationalError

from portal.dbgate import DatabaseGate

T0 = "2030-01-01 10:00:00Z"


def test_the_default_gate_lets_one_retry_through_exactly_two_seconds_after_a_failure():
    """The server's gate (default interval) refuses for two seconds, not a moment longer:
    a longer interval keeps clients on 503 after the database is back."""
    gate = DatabaseGate()
    with time_machine.travel(T0, tick=False) as clock:
        gate.failed(OperationalError("down"))
        clock.shift(1.999)
        assert not gate.admit()
        clock.shift(0.001)
        assert [gate.admit() for _ in range(2)] == [True, False]


def test_the_outage_log_keeps_the_first_500_characters_of_its_cause(caplog):
    """A driver's error can be long (a DSN, a stack of hints): the event keeps 500 characters."""
    caplog.set_level(logging.INFO, logger="portal.dbgate")
    cause = "".join(chr(ord("a") + i % 26) for i in range(700))
    DatabaseGate().failed(OperationalError(cause))
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "database.unavailable"]
    assert record.error == cause[:500]
