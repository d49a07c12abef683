"""Concurrency (PostgreSQL): 4 cleanups and 2 dispatchers start together while clients upload.

A world with work for every step (``world.py``) and a backlog of pending events; a real
gunicorn (``gunicorn.conf.py``, two gthread workers) on a free port; four client threads
uploading files through the HTTP API with a bearer token (and aborting one session each,
so cleanup has parts to reclaim while they upload). Once the clients are busy, six real
``manage.py`` processes start at once: four ``portal_cleanup``, two ``portal_dispatch``.
When they are done, the clients stop, and one more cleanup and dispatch (cron's next
runs) pick up what the clients did meanwhile.

Asserted: every process exits 0 and logs no ERROR; the server answered no 5xx and logged
no ERROR; every upload finalized with the sha256 the client computed; no double
transition (the ``session.expired`` counts in the logs add up to exactly the sessions that
were due, and each was expired once); every event reached the runner exactly once (no
process crashed, so at least once is exactly once here) and is ``delivered``; and
invariants 1-5 hold at the end.
"""

import hashlib
import http.client
import json
import threading
import time
from collections import Counter

import pytest

from portal.models import OutboxEvent, UploadSession
from portal.services.tokens import create_token
from tests.conftest import database_url
from tests.health_helpers import Server, base_env
from tests.reliability import invariants
from tests.reliability.commands import Command, run_command
from tests.reliability.world import UNIT, missing_survivors, seed_events, seed_world
from tests.runner import RunnerServer

pytestmark = [pytest.mark.reliability, pytest.mark.slow, pytest.mark.postgres]

SECRET = "concurrency-runner-secret"
SCALE = 4
BACKLOG = 1000
CLIENTS = 4
CHUNK = 16 * 1024
PARTS = 4
MIN_FILES = 3  # per client, even if the commands finish first
BASE = "/api/v1/uploads/sessions"


class Client:
    """One API client on its own keep-alive connection; records every answer's status."""

    def __init__(self, port, token, index, statuses):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}"}
        self.index = index
        self.statuses = statuses
        self.files = {}  # file id -> (sha256 the client computed, sha256 the server answered)

    def call(self, method, path, body=b"", content_type="application/octet-stream"):
        headers = {**self.headers, "Content-Type": content_type}
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        self.statuses[response.status] += 1
        return response.status, (json.loads(data) if data else None)

    def start(self, name, size):
        spec = {"filename": name, "size_bytes": size, "chunk_size_bytes": CHUNK}
        status, session = self.call("POST", BASE, json.dumps(spec).encode(), "application/json")
        assert status == 201, session
        return session["id"]

    def upload_one(self, number):
        data = hashlib.sha256(f"{self.index}-{number}".encode()).digest() * (PARTS * CHUNK // 32)
        session_id = self.start(f"c{self.index}-{number}.bin", len(data))
        for part in range(PARTS):
            body = data[part * CHUNK : (part + 1) * CHUNK]
            status, answer = self.call("PUT", f"{BASE}/{session_id}/parts/{part + 1}", body)
            assert status == 201, answer
        status, answer = self.call("POST", f"{BASE}/{session_id}/finalize")
        assert status == 200, answer
        self.files[answer["file"]["id"]] = (hashlib.sha256(data).hexdigest(), answer["file"])

    def abandon_one(self):
        """A session with one part, aborted: work for cleanup's orphans step."""
        session_id = self.start(f"c{self.index}-abandoned.bin", 2 * CHUNK)
        status, answer = self.call("PUT", f"{BASE}/{session_id}/parts/1", b"a" * CHUNK)
        assert status == 201, answer
        status, _ = self.call("DELETE", f"{BASE}/{session_id}")
        assert status == 204


def run_client(client, stop, errors):
    try:
        client.abandon_one()
        number = 0
        while number < MIN_FILES or not stop.is_set():
            client.upload_one(number)
            number += 1
    except Exception as exc:  # reported by the test
        errors.append(f"client {client.index}: {type(exc).__name__}: {exc}")
    finally:
        client.conn.close()


def error_records(lines):
    return [line for line in lines if line.get("level") in ("ERROR", "CRITICAL")]


def test_four_cleanups_and_two_dispatchers_with_clients_uploading(
    postgres_only, portal_storage, subprocess_env, owner, tmp_path, report
):
    world = seed_world(owner, SCALE, unit={"old_delivered_events": 0})
    due = (UNIT["expired_in_progress"] + UNIT["expired_init"]) * SCALE
    backlog = [str(pk) for pk in seed_events(BACKLOG)]
    _, token = create_token(owner, name="concurrency")
    server_env = base_env(
        portal_storage, DATABASE_URL=database_url(), WEB_CONCURRENCY="2", GUNICORN_THREADS="4"
    )
    server = Server(server_env, tmp_path / "gunicorn.log")
    statuses, errors, stop = Counter(), [], threading.Event()
    clients = [Client(server.port, token, index, statuses) for index in range(CLIENTS)]
    threads = [threading.Thread(target=run_client, args=(c, stop, errors)) for c in clients]
    try:
        with RunnerServer("ok", secret=SECRET, delay=0.001) as runner:
            env = {
                **subprocess_env,
                "PORTAL_RUNNER_ENDPOINT": runner.url,
                "PORTAL_RUNNER_AUTH_SECRET": SECRET,
                "PORTAL_LOG_LEVEL": "info",
            }
            for thread in threads:
                thread.start()
            while sum(statuses.values()) < 2 * CLIENTS and not errors:
                time.sleep(0.01)
            commands = [Command(env, "portal_cleanup", "--json") for _ in range(4)]
            commands += [Command(env, "portal_dispatch", "--json") for _ in range(2)]
            codes = [command.finish(timeout=180) for command in commands]
            stop.set()
            for thread in threads:
                thread.join(120)
            # Cron's next runs: the clients' aborted sessions, the events of their files.
            next_codes = [run_command(env, name, "--json")[0] for name in ("portal_cleanup",)]
            code, last_dispatch = run_command(env, "portal_dispatch", "--json")
            next_codes.append(code)
            received = Counter(r.event_id for r in runner.requests if r.signature_ok)
            requests = len(runner.requests)
    finally:
        server.stop()

    cleanups, dispatchers = commands[:4], commands[4:]
    all_lines = [line for command in commands for line in command.lines] + last_dispatch.lines
    server_lines = [
        json.loads(line) for line in server.output().splitlines() if line.startswith("{")
    ]
    outcomes = Counter(command.summary()["outcome"] for command in cleanups)
    expired_logged = sum(
        record.get("count", 0)
        for command in cleanups
        for record in command.records(event="session.expired")
    )
    expired_rows = UploadSession.objects.filter(
        failure_reason="expired", status=UploadSession.Status.FAILED
    ).count()
    dispatched_logged = Counter(
        record["event_id"] for record in all_lines if record.get("event") == "outbox.dispatched"
    )
    events = {str(pk) for pk in OutboxEvent.objects.values_list("pk", flat=True)}
    uploaded = {fid: pair for client in clients for fid, pair in client.files.items()}
    found = invariants.check_all(
        settled=True,
        runner_counts=received,
        expected_events=backlog + [str(pk) for pk in world.pending_events],
    )
    found += missing_survivors(world.live_sessions, world.complete_sessions)
    twice = {event: n for event, n in received.items() if n > 1}
    report(
        "concurrency 4 cleanup + 2 dispatch + clients",
        exit_codes=codes + next_codes,
        cleanup_outcomes=dict(outcomes),
        sessions_expired=f"{expired_logged} logged/{expired_rows} rows/{due} due",
        events=len(events),
        runner_requests=requests,
        delivered_twice=len(twice),
        delivered_per_dispatcher=[command.summary()["delivered"] for command in dispatchers],
        uploads=len(uploaded),
        http=dict(sorted(statuses.items())),
        violations=len(found),
    )
    assert not errors, errors
    assert codes == [0] * 6 and next_codes == [0, 0], [c.stdout[-2000:] for c in commands]
    assert error_records(all_lines) == [] and error_records(server_lines) == []
    assert not [status for status in statuses if status >= 500]
    assert expired_logged == expired_rows == due
    assert not twice, f"{len(twice)} events reached the runner more than once"
    assert set(received) == events and len(dispatched_logged) == len(events)
    assert all(count == 1 for count in dispatched_logged.values())
    for file_id, (sha256, answered) in uploaded.items():
        assert answered["sha256"] == sha256, file_id
    assert found == [], invariants.summarize(found)
    assert sum(1 for command in dispatchers if command.summary()["delivered"]) >= 1
