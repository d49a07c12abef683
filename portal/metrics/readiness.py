"""The last ``/ready`` answer of this server as gauges, without running a check.

After a ``/ready`` that ran its checks, the results go to ``livemostrecent`` gauges, so a
scrape reports the newest answer of any live worker and never touches storage. Every
gauge is labelled, so none reads 0 ("not ready") before the first probe.
"""

import math
import threading
import time

from prometheus_client import Gauge

from portal.health.executor import results
from portal.health.views import READY_CACHE_KEY, state_of

MODE = "livemostrecent"

CHECK_UP = Gauge(
    "portal_ready_check_up",
    "1 when the readiness check passed in the last /ready answer (ok or full), else 0.",
    ["check"],
    multiprocess_mode=MODE,
)
CHECK_SECONDS = Gauge(
    "portal_ready_check_duration_seconds",
    "How long the readiness check took in the last /ready answer.",
    ["check"],
    multiprocess_mode=MODE,
)
CHECKED_AT = Gauge(
    "portal_ready_check_timestamp_seconds",
    "When this server last ran the readiness check for /ready (Unix time).",
    ["check"],
    multiprocess_mode=MODE,
)

_lock = threading.Lock()
_published = [None]  # the cached results object last written to the gauges


def publish_latest():
    """Write the process's last readiness answer to the gauges if it is a new one.

    Read from the ``/ready`` result cache whatever its age (``math.inf``): the metrics
    report what the last probe saw, and never run a check themselves.
    """
    latest = results.get(READY_CACHE_KEY, math.inf)
    if latest is None:
        return False
    with _lock:
        if latest is _published[0]:
            return False
        _published[0] = latest
        now = time.time()
        for result in latest:
            name = result.check.name
            CHECK_UP.labels(check=name).set(0 if state_of(result) == "unavailable" else 1)
            CHECK_SECONDS.labels(check=name).set(float(result.time_taken))
            CHECKED_AT.labels(check=name).set(now)
    return True
