"""/metrics from a real gunicorn (``gunicorn.conf.py``, two workers) checked by ``promtool``,
and what a worker that dies leaves behind in the multiprocess directory.
"""

import json
import os
import signal
import subprocess
import time

import pytest

from tests.api_helpers import make_token
from tests.metrics_helpers import GunicornServer, parse, program, value

pytestmark = pytest.mark.slow


@pytest.fixture
def server(subprocess_env, tmp_path):
    env = {**subprocess_env, "PORTAL_READY_CACHE_SECONDS": "0", "PORTAL_LOG_LEVEL": "warning"}
    gunicorn = GunicornServer(env, tmp_path / "gunicorn.log")
    yield gunicorn
    gunicorn.stop()


def upload(server, token, data, chunk):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body = json.dumps({"filename": "a.bin", "size_bytes": len(data), "chunk_size_bytes": chunk})
    status, raw = server.request("POST", "/api/v1/uploads/sessions", body, headers)
    assert status == 201, raw
    session = json.loads(raw)["id"]
    parts = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    for number, part in enumerate(parts, start=1):
        path = f"/api/v1/uploads/sessions/{session}/parts/{number}"
        status, raw = server.request(
            "PUT", path, part, {**headers, "Content-Length": str(len(part))}
        )
        assert status == 201, raw
    status, raw = server.request(
        "POST", f"/api/v1/uploads/sessions/{session}/finalize", b"", headers
    )
    assert status == 200, raw
    return len(parts)


def test_promtool_accepts_a_real_scrape_after_an_upload(server, user, tmp_path):
    promtool = program("promtool")
    token = make_token(user)
    parts = upload(server, token, b"0123456789" * 10, chunk=30)
    for _ in range(4):
        assert server.request("GET", "/ready")[0] == 200
    assert server.request("GET", "/no-such-page")[0] == 404

    text = server.scrape()
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == ""

    samples = parse(text)

    def requests(view, method, status="2xx"):
        return value(samples, "portal_http_requests_total", view=view, method=method, status=status)

    # Whichever worker answered each request, the scrape sums both.
    assert requests("upload-part", "PUT") == parts == 4
    assert requests("upload-sessions", "POST") == 1
    assert requests("upload-finalize", "POST") == 1
    assert requests("ready", "GET") == 4
    assert requests("unresolved", "GET", "4xx") == 1
    assert value(samples, "portal_ready_check_up", check="database") == 1
    assert value(samples, "portal_outbox_events", status="pending") == 1  # file.uploaded
    assert value(samples, "portal_upload_temp_objects") == parts  # until cleanup runs
    assert value(samples, "portal_metrics_database_up") == 1
    assert not [line for line in text.splitlines() if line.startswith(("process_", "python_"))]


def test_a_killed_worker_leaves_no_live_gauge_and_keeps_its_counts(server, transactional_db):
    directory = server.metrics_directory()
    workers = server.workers()
    # New connections until both workers have answered /ready (bounded).
    for _ in range(400):
        server.request("GET", "/ready")
        writers = {f.name.rsplit("_", 1)[1][:-3] for f in directory.glob("gauge_livemostrecent_*")}
        if writers >= {str(pid) for pid in workers}:
            break
    else:
        pytest.fail(f"both workers never answered /ready: {sorted(writers)} of {workers}")
    before = parse(server.scrape())
    ready_before = value(
        before, "portal_http_requests_total", view="ready", method="GET", status="2xx"
    )

    victim = workers[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = server.workers()
        if victim not in now and len(now) == 2:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"gunicorn did not replace worker {victim}: {server.output()}")

    left = sorted(f.name for f in directory.iterdir())
    assert not [name for name in left if str(victim) in name], left
    assert {"counter_dead.db", "histogram_dead.db"} <= set(left)
    after = parse(server.scrape())
    # The dead worker's requests still count; its readiness values are gone, the survivor's stay.
    ready_after = value(
        after, "portal_http_requests_total", view="ready", method="GET", status="2xx"
    )
    assert ready_after == ready_before
    assert value(after, "portal_ready_check_up", check="database") == 1

    server.stop()
    assert not directory.exists()
