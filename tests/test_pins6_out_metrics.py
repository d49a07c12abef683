"""Pins (issue #31, sixth round) for the metrics: the multiprocess directories and the
figures, with data where a wrong implementation used to pass too."""

import os
import subprocess

import pytest

from portal.health.paths import HEALTH_PATH
from portal.metrics import http, multiproc
from tests.conftest import PYTHON
from tests.test_metrics_access import duration_count, requests_count


def dead_pid():
    gone = subprocess.run([PYTHON, "-c", "import os; print(os.getpid())"], capture_output=True)
    return int(gone.stdout)


def test_a_dead_masters_directory_of_another_user_is_left_alone(tmp_path, monkeypatch):
    """/dev/shm is shared by every user of the host: a master clears abandoned metrics
    directories of its own user only, never another account's (whose master may run in
    another PID namespace, or whose files it has no business deleting)."""
    abandoned = tmp_path / f"{multiproc.DIR_PREFIX}{dead_pid()}-abc"
    abandoned.mkdir()
    (abandoned / "counter_1.db").write_bytes(b"x")
    # This process pretends to be another user (the test cannot chown everywhere).
    real_uid = os.getuid()
    monkeypatch.setattr(multiproc.os, "getuid", lambda: real_uid + 1)

    multiproc.remove_abandoned_directories(str(tmp_path))
    assert (abandoned / "counter_1.db").exists()

    monkeypatch.setattr(multiproc.os, "getuid", lambda: real_uid)
    multiproc.remove_abandoned_directories(str(tmp_path))
    assert not abandoned.exists()


def test_a_request_whose_handling_raised_counts_as_a_5xx_and_is_timed(rf):
    """An exception that escapes the stack below the middleware ends in a 500 from the
    server: the request is counted under ``status="5xx"`` (an error-rate alert sums it)
    and timed, and the exception itself still propagates to the server's handler."""
    labels = {"view": "health", "method": "GET"}
    before = (requests_count(**labels, status="5xx"), duration_count(**labels))

    def broken(request):
        raise RuntimeError("the view blew up")

    middleware = http.MetricsMiddleware(broken)
    with pytest.raises(RuntimeError, match="blew up"):
        middleware(rf.get(HEALTH_PATH))

    after = (requests_count(**labels, status="5xx"), duration_count(**labels))
    assert after == (before[0] + 1, before[1] + 1)
