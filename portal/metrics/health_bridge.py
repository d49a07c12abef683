"""The one module of ``portal.metrics`` that imports the health code (``portal.health``).

If the probes, the ``/ready`` view or the job schedules move, re-point the imports below
and nothing else in ``portal.metrics`` changes.
"""

import math
from dataclasses import dataclass

from portal.health.checks import JOB_SCHEDULES
from portal.health.executor import results
from portal.health.paths import HEALTH_PATH, READY_PATH
from portal.health.views import READY_CACHE_KEY, state_of

__all__ = ["HEALTH_PATH", "JOB_SCHEDULES", "READY_PATH", "CheckState", "last_readiness"]


@dataclass(frozen=True)
class CheckState:
    name: str
    state: str  # "ok", "full", "warning" or "unavailable", as /ready reports it
    seconds: float


def last_readiness():
    """``(token, checks)`` of the last readiness answer this process computed, or None.

    Read from the ``/ready`` result cache whatever its age (``math.inf``): the metrics
    report what the last probe saw, and never run a check themselves. ``token`` is the
    cached object itself, so a caller can tell a new answer from one it has seen.
    """
    cached = results.get(READY_CACHE_KEY, math.inf)
    if cached is None:
        return None
    checks = [CheckState(r.check.name, state_of(r), float(r.time_taken)) for r in cached]
    return cached, checks
