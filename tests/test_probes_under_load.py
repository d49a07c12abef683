"""Probes and API requests against a real gunicorn while the database hangs under traffic.

The database is a black hole (accepts, never answers) and a dozen clients keep calling
the API: ``/health`` must still answer at once and ``/ready`` within its budget (the
probes have their own threads, ``portal.health.lanes``), and the API must answer
``503 database_unavailable`` at once while the database is known to be down instead of
each request waiting out the connect timeout (``portal.dbgate``).
"""

import http.client
import json
import threading
import time

import pytest

from portal.dbgate import RETRY_SECONDS
from tests.health_helpers import BlackHole, Server, base_env

pytestmark = pytest.mark.slow

THREADS = 4
CONNECT_TIMEOUT = 3
CHECK_TIMEOUT = 3
API_CLIENTS = 12
LOAD_SECONDS = 9
API_PATH = "/api/v1/uploads/sessions"


def timed_get(port, path, timeout, headers=None):
    """(status or None on timeout, seconds, body) of one GET on a fresh connection."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, time.monotonic() - started, response.read().decode()
    except TimeoutError:
        return None, time.monotonic() - started, ""
    finally:
        conn.close()


def api_load(port, until, answers):
    while time.monotonic() < until:
        answers.append(
            timed_get(port, API_PATH, timeout=15, headers={"Authorization": "Bearer pt_load"})
        )
        time.sleep(0.1)


def probe_loop(port, path, timeout, until, answers):
    while time.monotonic() < until:
        answers.append(timed_get(port, path, timeout=timeout))
        time.sleep(0.25)


def test_probes_answer_and_api_fails_fast_while_the_database_hangs(portal_storage, tmp_path):
    hole = BlackHole()
    env = base_env(
        portal_storage,
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{hole.port}/portal",
        DATABASE_CONNECT_TIMEOUT_SECONDS=str(CONNECT_TIMEOUT),
        PORTAL_HEALTH_CHECK_TIMEOUT_SECONDS=str(CHECK_TIMEOUT),
        GUNICORN_THREADS=str(THREADS),
    )
    server = Server(env, tmp_path / "gunicorn.log")
    api, health, ready = [], [], []
    try:
        until = time.monotonic() + LOAD_SECONDS
        clients = [
            threading.Thread(target=api_load, args=(server.port, until, api))
            for _ in range(API_CLIENTS)
        ]
        clients += [
            threading.Thread(target=probe_loop, args=(server.port, "/health", 3, until, health)),
            threading.Thread(target=probe_loop, args=(server.port, "/ready", 6, until, ready)),
        ]
        for client in clients:
            client.start()
        for client in clients:
            client.join(timeout=LOAD_SECONDS + 30)
        attempts = len(hole.accepted)
    finally:
        server.stop()
        hole.close()

    summary = figures(api, health, ready, attempts)
    print(json.dumps(summary))
    assert {status for status, _, _ in health} == {200}, summary
    assert max(seconds for _, seconds, _ in health) < 1, summary
    assert {status for status, _, _ in ready} == {503}, summary
    assert max(seconds for _, seconds, _ in ready) < CHECK_TIMEOUT + 1 + 0.5, summary
    assert {status for status, _, _ in api} == {503}, summary
    assert {json.loads(body)["error"]["code"] for _, _, body in api} == {"database_unavailable"}
    # The requests in flight when the database first fails wait out the connect timeout,
    # then one per retry window; the rest are refused at once.
    retries = LOAD_SECONDS / (CONNECT_TIMEOUT + RETRY_SECONDS) + 1
    slow = [seconds for _, seconds, _ in api if seconds > 0.5]
    assert len(slow) <= API_CLIENTS + retries, summary
    assert len(api) > 5 * len(slow), summary
    # The first threads and the gate's single retries, plus the readiness check's.
    assert attempts <= THREADS + retries + LOAD_SECONDS / CONNECT_TIMEOUT + 1, summary


def figures(api, health, ready, attempts):
    def stats(answers):
        seconds = sorted(s for _, s, _ in answers) or [0]
        return {
            "n": len(answers),
            "statuses": sorted({str(status) for status, _, _ in answers}),
            "p50": round(seconds[len(seconds) // 2], 3),
            "max": round(seconds[-1], 3),
        }

    return {
        "api": stats(api),
        "health": stats(health),
        "ready": stats(ready),
        "connect_attempts": attempts,
    }
