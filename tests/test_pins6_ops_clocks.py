"""Exact clock boundaries of the database gate and the /ready result cache.

The other tests step past each window (1.9 s, 2.1 s); these stand on its edge, where a
``<`` written ``<=`` (or the other way round) changes the answer.
"""

import pytest
import time_machine
from django.test import Client

from portal import dbgate
from portal.dbgate import DatabaseGate
from tests.conftest import apply_storage
from tests.health_helpers import break_local_storage as break_temp
from tests.health_helpers import database_down
from tests.status_helpers import fresh_probe_cache  # noqa: F401  (autouse here)

T0 = "2030-01-01 10:00:00Z"
URL = "/api/v1/uploads/sessions/00000000-0000-0000-0000-000000000000"


def test_a_request_exactly_at_the_retry_time_reaches_the_view(client, db, monkeypatch):
    """Through the middleware: at ``RETRY_SECONDS`` the retry connects and the view answers."""
    monkeypatch.setattr(dbgate, "gate", DatabaseGate(retry_seconds=dbgate.RETRY_SECONDS))
    down = database_down(monkeypatch)
    with time_machine.travel(T0, tick=False) as clock:
        assert client.get(URL).status_code == 503
        down[0] = False
        clock.shift(dbgate.RETRY_SECONDS - 0.01)
        refused = client.get(URL)
        clock.shift(0.01)
        answered = client.get(URL)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "database_unavailable"
    assert answered.status_code == 401  # past the gate: the view's answer (no token)


def test_a_connect_that_fails_with_a_bug_is_raised_not_a_503_and_still_closes_the_gate(
    client, db, monkeypatch
):
    """Only the driver's connection errors mean "database unavailable": anything else is a
    server error raised as such (not hidden behind a 503), and the retry it was is over."""
    monkeypatch.setattr(dbgate, "gate", DatabaseGate(retry_seconds=dbgate.RETRY_SECONDS))

    def broken(alias="default"):
        raise KeyError("OPTIONS")

    monkeypatch.setattr(dbgate, "connect", broken)
    with pytest.raises(KeyError):
        client.get(URL)
    assert not dbgate.gate.admit()


def test_a_cached_ready_answer_expires_exactly_at_its_max_age(db, settings, data_dir):
    """``PORTAL_READY_CACHE_SECONDS`` is how long an answer lives: at that age it is rerun."""
    settings.PORTAL_READY_CACHE_SECONDS = 3
    apply_storage(settings, "local", data_dir)
    client = Client()
    with time_machine.travel(T0, tick=False) as clock:
        assert client.get("/ready").status_code == 200
        break_temp(data_dir)
        clock.shift(2.999)
        cached = client.get("/ready")
        clock.shift(0.001)
        fresh = client.get("/ready")
    assert (cached.status_code, cached.json()["checks"]["storage:portal_temp"]) == (200, "ok")
    assert (fresh.status_code, fresh.json()["checks"]["storage:portal_temp"]) == (
        503,
        "unavailable",
    )


def test_a_cached_ready_answer_from_the_future_is_not_reused(db, settings, data_dir):
    """A clock stepped back (NTP) must not keep serving an answer stored "later" than now."""
    settings.PORTAL_READY_CACHE_SECONDS = 60
    apply_storage(settings, "local", data_dir)
    client = Client()
    with time_machine.travel(T0, tick=False) as clock:
        assert client.get("/ready").status_code == 200
        break_temp(data_dir)
        clock.shift(-1)
        assert client.get("/ready").status_code == 503
