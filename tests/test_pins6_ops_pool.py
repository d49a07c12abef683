"""The probe pool (``portal.health.executor``): its size is a bound, not a floor."""

import concurrent.futures
import threading

import pytest

from portal.health import executor as probes
from tests.test_pins2_ops_drain import Hangs, Quick


def test_the_default_pool_holds_four_threads_a_fifth_check_waits_for_one():
    """Four hung checks take every thread of a process's pool (one per readiness check plus
    a spare): a fifth queues until one returns, so hung checks cost at most four threads."""
    pool = probes.SingleFlightExecutor()
    release = threading.Event()
    hung = [Hangs(name, release) for name in ("database", "temp", "final", "spare")]
    try:
        followers = [pool.submit(check.run) for check in hung]
        for check in hung:
            assert check.started.wait(2), f"{check.name} never started"
        queued = pool.submit(Quick().run)
        with pytest.raises(concurrent.futures.TimeoutError):
            queued.result(timeout=0.3)
    finally:
        release.set()
    assert queued.result(timeout=5) == "quick"
    assert [f.result(timeout=5) for f in followers] == ["database", "temp", "final", "spare"]


def test_a_pool_of_two_runs_two_calls_at_once_never_three():
    """``max_workers`` threads are started, no more: the third call starts only when one of
    the first two has returned."""
    pool = probes.SingleFlightExecutor(max_workers=2)
    first, second = threading.Event(), threading.Event()
    a, b = Hangs("a", first), Hangs("b", second)
    c = Hangs("c", threading.Event())
    c.release.set()
    try:
        followers = [pool.submit(check.run) for check in (a, b, c)]
        assert a.started.wait(2) and b.started.wait(2)
        assert not c.started.wait(0.3)
        first.set()
        assert c.started.wait(5)
    finally:
        first.set()
        second.set()
    assert [f.result(timeout=5) for f in followers] == ["a", "b", "c"]
