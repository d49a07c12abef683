"""The event vocabulary end to end: every event of docs/logging.md, from real processes.

A gunicorn server (``gunicorn.conf.py``) takes a real upload over HTTP; ``portal_cleanup``
and ``portal_dispatch`` run as subprocesses against a real runner; a second server with
broken storage fails ``/ready``. Everything runs with ``PORTAL_LOG_FORMAT=json`` and
every line any of them prints must be a JSON record; each event must appear with its
context fields, and no secret may appear anywhere.
"""

import fcntl
import json
import os
import subprocess
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from portal import locks, storage
from portal.models import OutboxEvent, UploadSession
from portal.observability import EVENTS
from portal.services.tokens import create_token
from tests.conftest import ROOT
from tests.outbox_helpers import make_events
from tests.processes import (
    RUNNER_SECRET,
    SECRET_KEY,
    ServerProcess,
    assert_record_contract,
    json_lines,
    run_manage,
)
from tests.runner import RunnerServer

BASE = "/api/v1/uploads/sessions"
# The context each event must carry (beyond timestamp, level, logger, message, event).
EVENT_CONTEXT = {
    "session.created": {"request_id", "session_id", "file_id"},
    "part.received": {"request_id", "session_id", "part_number"},
    "file.stored": {"request_id", "session_id", "file_id"},
    "session.aborted": {"request_id", "session_id"},
    "session.expired": {"job", "run_id"},
    "outbox.dispatched": {"job", "run_id", "event_id", "duration_ms"},
    "outbox.delivery_failed": {"job", "run_id", "event_id"},
    "outbox.gave_up": {"job", "run_id", "event_id"},
    "cleanup.step": {"job", "run_id", "duration_ms"},
    "cleanup.finished": {"job", "run_id", "duration_ms"},
    "cleanup.skipped": {"job", "run_id"},
    "ready.check_failed": {"request_id", "duration_ms"},
    "storage.unavailable": {"request_id", "session_id", "part_number"},
    "database.unavailable": {"request_id"},
    "database.recovered": {"request_id"},
    "storage.link_refused": {"request_id", "session_id", "part_number"},
    "job.skipped": {"job", "run_id"},
}
# Events a person causes through a browser session, checked where that session is.
COVERED_ELSEWHERE = {
    "outbox.requeued",  # tests/test_status_page.py (in-process), test_status_browser.py
}
JOB_OF_EVENT = {
    "session.expired": "portal_cleanup",
    "cleanup.step": "portal_cleanup",
    "cleanup.finished": "portal_cleanup",
    "cleanup.skipped": "portal_cleanup",
    "outbox.dispatched": "portal_dispatch",
    "outbox.delivery_failed": "portal_dispatch",
    "outbox.gave_up": "portal_dispatch",
    "job.skipped": "portal_dispatch",
}


class Output:
    """Everything the processes of the test printed, checked line by line as it comes."""

    def __init__(self):
        self.records = []
        self.texts = []

    def add_command(self, result, name):
        self.texts.append(result.stdout + result.stderr)
        records = json_lines(result.stderr, where=f"{name} stderr")
        for record in json_lines(result.stdout, where=f"{name} stdout"):
            if "event" in record or "logger" in record:
                records.append(record)  # the --json summary line is data, not a record
        self._add(records, name)
        return records

    def add_server(self, server, name):
        self.texts.append(server.output())
        self._add(server.records(), name)

    def _add(self, records, name):
        for record in records:
            assert_record_contract(record)
        unmarked = [r for r in records if "job" in r and "run_id" not in r]
        assert not unmarked, f"{name}: records of a job without a run id: {unmarked}"
        self.records.extend(records)


def api(server, method, path, token, request_id, *, body=None, content_type=None):
    headers = {"Authorization": f"Bearer {token}", "X-Request-ID": request_id}
    if content_type:
        headers["Content-Type"] = content_type
    status, response, payload = server.request(method, path, headers=headers, body=body)
    assert response.getheader("X-Request-ID") == request_id
    return status, (json.loads(payload) if payload else None)


def create_session(server, token, request_id, data, chunk):
    body = json.dumps(
        {
            "filename": "report.bin",
            "content_type": "application/octet-stream",
            "size_bytes": len(data),
            "chunk_size_bytes": chunk,
        }
    )
    status, session = api(
        server, "POST", BASE, token, request_id, body=body, content_type="application/json"
    )
    assert status == 201, session
    return session["id"]


def upload_file(server, token, request_id, data, chunk):
    session_id = create_session(server, token, request_id, data, chunk)
    for number, start in enumerate(range(0, len(data), chunk), 1):
        status, body = api(
            server,
            "PUT",
            f"{BASE}/{session_id}/parts/{number}",
            token,
            request_id,
            body=data[start : start + chunk],
            content_type="application/octet-stream",
        )
        assert status == 201, body
    status, body = api(server, "POST", f"{BASE}/{session_id}/finalize", token, request_id)
    assert status == 200, body
    return session_id


def make_outbox_due():
    """Skip the backoff wait: the test's stand-in for time passing between cron runs."""
    OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def database_outage(env, token, tmp_path):
    """A server whose SQLite database's directory goes away and comes back."""
    directory = tmp_path / "db"
    env = {**env, "DATABASE_URL": f"sqlite:///{directory / 'portal.sqlite3'}"}
    server = ServerProcess.gunicorn(env, tmp_path)
    try:
        directory.rename(tmp_path / "db-gone")
        status, body = api(server, "GET", BASE, token, "req-db-down")
        assert (status, body["error"]["code"]) == (503, "database_unavailable")
        (tmp_path / "db-gone").rename(directory)
        # Refused (503) until the gate lets a retry through, RETRY_SECONDS after the failure.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status = server.request("GET", "/nope", headers={"X-Request-ID": "req-db-back"})[0]
            if status == 404:
                break
            time.sleep(0.2)
        assert status == 404
    finally:
        server.stop()
    return server


@pytest.mark.slow
def test_every_event_of_the_vocabulary_is_logged_with_its_context(subprocess_env, user, tmp_path):
    token = create_token(user)[1]
    output = Output()
    runner = RunnerServer(mode="ok", secret=RUNNER_SECRET).start()
    env = {
        **subprocess_env,
        "SECRET_KEY": SECRET_KEY,
        "PORTAL_RUNNER_ENDPOINT": runner.url,
        "PORTAL_RUNNER_AUTH_SECRET": RUNNER_SECRET,
        "PORTAL_RUNNER_TIMEOUT_SECONDS": "5",
        "PORTAL_OUTBOX_MAX_ATTEMPTS": "2",
    }
    server = ServerProcess.gunicorn(env, tmp_path)
    try:
        # The upload flow over HTTP: created, received, stored; another one aborted.
        stored_id = upload_file(server, token, "req-upload-1", b"a" * 10 + b"b" * 10 + b"c", 10)
        aborted_id = create_session(server, token, "req-abort-1", b"x" * 30, 10)
        status, _ = api(server, "DELETE", f"{BASE}/{aborted_id}", token, "req-abort-1")
        assert status == 204
        expired_id = create_session(server, token, "req-expire-1", b"y" * 30, 10)
    finally:
        server.stop()
    output.add_server(server, "gunicorn")

    # Cleanup: the stale session expires; a second run finds the lock taken and skips.
    UploadSession.objects.filter(pk=expired_id).update(
        expires_at=timezone.now() - timedelta(hours=1)
    )
    output.add_command(run_manage(env, "portal_cleanup", "--json"), "portal_cleanup")
    with locks.hold("portal_cleanup"):
        skipped = run_manage(env, "portal_cleanup", "--json")
    output.add_command(skipped, "portal_cleanup (skipped)")

    # Dispatch: the stored file's event is delivered; a second file's event fails, then
    # gives up after PORTAL_OUTBOX_MAX_ATTEMPTS=2 (exit 1).
    try:
        output.add_command(run_manage(env, "portal_dispatch", "--json"), "portal_dispatch")
        server = ServerProcess.gunicorn(env, tmp_path)
        try:
            upload_file(server, token, "req-upload-2", b"z" * 15, 10)
        finally:
            server.stop()
        output.add_server(server, "gunicorn 2")
        runner.set_mode("error", status=503)
        output.add_command(
            run_manage(env, "portal_dispatch", "--json"), "portal_dispatch (failing)"
        )
        make_outbox_due()
        gave_up = run_manage(env, "portal_dispatch", "--json", check=False)
        assert gave_up.returncode == 1, gave_up.stderr
        output.add_command(gave_up, "portal_dispatch (gave up)")
    finally:
        runner.stop()

    # Readiness: a server whose storage root is a file fails /ready.
    broken_root = tmp_path / "storage-is-a-file"
    broken_root.write_text("not a directory")
    broken_env = {**env, "PORTAL_STORAGE": "local", "PORTAL_DATA_DIR": str(broken_root)}
    server = ServerProcess.gunicorn(broken_env, tmp_path)
    try:
        status, _, _ = server.request("GET", "/ready", headers={"X-Request-ID": "req-ready-1"})
        assert status == 503
        # A part upload there: 503 storage_unavailable, the cause in storage.unavailable.
        session_id = create_session(server, token, "req-storage-1", b"s" * 10, 10)
        status, body = api(
            server,
            "PUT",
            f"{BASE}/{session_id}/parts/1",
            token,
            "req-storage-1",
            body=b"s" * 10,
            content_type="application/octet-stream",
        )
        assert (status, body["error"]["code"]) == (503, "storage_unavailable")
    finally:
        server.stop()
    output.add_server(server, "gunicorn (broken storage)")
    output.add_server(database_outage(env, token, tmp_path), "gunicorn (database outage)")

    # A hard link planted at a session's assembly file: refused, storage.link_refused.
    linked_root = tmp_path / "linked"
    for prefix in ("temp", "final"):
        (linked_root / prefix).mkdir(parents=True)
    linked_env = {**env, "PORTAL_STORAGE": "local", "PORTAL_DATA_DIR": str(linked_root)}
    server = ServerProcess.gunicorn(linked_env, tmp_path)
    try:
        session_id = create_session(server, token, "req-link-1", b"l" * 10, 10)
        assembly = linked_root / "temp" / storage.assembly_key(session_id)
        assembly.parent.mkdir()
        (tmp_path / "planted").write_bytes(b"")
        os.link(tmp_path / "planted", assembly)
        status, body = api(
            server,
            "PUT",
            f"{BASE}/{session_id}/parts/1",
            token,
            "req-link-1",
            body=b"l" * 10,
            content_type="application/octet-stream",
        )
        assert (status, body["error"]["code"]) == (503, "storage_unavailable")
    finally:
        server.stop()
    output.add_server(server, "gunicorn (planted link)")

    # The cron wrapper skips a run while the previous one on this host holds the lock.
    lock = tmp_path / "portal-portal_dispatch.lock"
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        wrapper_env = {**env, "PORTAL_LOCK_DIR": str(tmp_path), "PORTAL_PROJECT_DIR": str(ROOT)}
        skipped_job = subprocess.run(
            [str(ROOT / "deploy" / "cron" / "portal-job"), "portal_dispatch", "--json"],
            env=wrapper_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert skipped_job.returncode == 0, skipped_job.stderr
    output.add_command(skipped_job, "portal-job (skipped)")

    text = "\n".join(output.texts)
    for secret in (SECRET_KEY, RUNNER_SECRET, token):
        assert secret not in text

    by_event = {}
    for record in output.records:
        if "event" in record:
            by_event.setdefault(record["event"], []).append(record)
    expected = EVENTS - COVERED_ELSEWHERE
    assert set(by_event) == expected, f"missing: {sorted(expected - set(by_event))}"
    for event, fields in EVENT_CONTEXT.items():
        complete = [r for r in by_event[event] if fields <= r.keys()]
        assert complete, f"{event} lacks {fields - by_event[event][0].keys()}"
        if event in JOB_OF_EVENT:
            assert {r["job"] for r in complete} == {JOB_OF_EVENT[event]}, event

    request_ids = {event: {r.get("request_id") for r in by_event[event]} for event in by_event}
    assert request_ids["session.created"] == {
        "req-upload-1",
        "req-abort-1",
        "req-expire-1",
        "req-upload-2",
        "req-storage-1",
        "req-link-1",
    }
    assert request_ids["part.received"] == {"req-upload-1", "req-upload-2"}
    assert request_ids["file.stored"] == {"req-upload-1", "req-upload-2"}
    assert request_ids["session.aborted"] == {"req-abort-1"}
    assert request_ids["ready.check_failed"] == {"req-ready-1"}
    assert request_ids["storage.unavailable"] == {"req-storage-1"}
    assert request_ids["database.unavailable"] == {"req-db-down"}
    assert request_ids["database.recovered"] == {"req-db-back"}
    assert request_ids["storage.link_refused"] == {"req-link-1"}
    assert {r["session_id"] for r in by_event["session.aborted"]} == {aborted_id}
    assert stored_id in {r["session_id"] for r in by_event["file.stored"]}
    assert {r["part_number"] for r in by_event["part.received"]} == {1, 2, 3}
    for event in ("outbox.dispatched", "outbox.delivery_failed", "outbox.gave_up"):
        for record in by_event[event]:
            uuid.UUID(record["event_id"])
    # Each request's lines, the access line included, share the request's id.
    access = {r["request_id"]: r for r in output.records if r["logger"] == "gunicorn.access"}
    assert {"req-upload-1", "req-abort-1", "req-expire-1", "req-ready-1"} <= access.keys()


def test_a_failed_job_keeps_one_run_id_on_every_record(subprocess_env):
    with RunnerServer(mode="error", secret=RUNNER_SECRET) as runner:
        env = {
            **subprocess_env,
            "PORTAL_RUNNER_ENDPOINT": runner.url,
            "PORTAL_RUNNER_AUTH_SECRET": RUNNER_SECRET,
            "PORTAL_OUTBOX_MAX_ATTEMPTS": "1",
        }
        make_events(1)
        result = run_manage(env, "portal_dispatch", "--json", check=False)
    assert result.returncode == 1, result.stderr
    records = json_lines(result.stderr) + [r for r in json_lines(result.stdout) if "logger" in r]
    assert {r["event"] for r in records if "event" in r} == {"outbox.gave_up"}
    assert records[-1]["logger"] == "portal.commands"
    assert len({r["run_id"] for r in records}) == 1
