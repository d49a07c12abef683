"""An assembly whose worker dies (SIGKILL) is finished by ``portal_finalize``, exactly once.

A real gunicorn (``gunicorn.conf.py``, one worker) takes the upload; finalize answers 202
(``PORTAL_FINALIZE_WAIT_SECONDS=0``) and assembles in the worker; the test SIGKILLs the
worker once the assembly has started. gunicorn starts a new worker; the session stays
``finalizing`` with a lease that runs out. ``portal_finalize`` run "later" (time-machine
in a zygote child) takes it over; cleanup run later still reclaims the parts and, on S3,
the dead assembly's multipart upload. Outcome: one final object with the right sha256,
one ``file.uploaded`` event, no temp object and no multipart upload left.

Concurrent takeover (PostgreSQL): three ``portal_finalize`` processes and a client's
finalize race for the same dead assembly; still one object, one event.
"""

import json
import os
import signal
import threading
import time

import psutil
import pytest
from django.db import connection

from portal import storage
from portal.models import IngestFile, OutboxEvent, UploadSession
from portal.services.tokens import create_token
from tests.objects import iter_final
from tests.processes import ServerProcess

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

MIB = 1024 * 1024
BASE = "/api/v1/uploads/sessions"
LATER = 3 * 3600  # past the assembly lease and cleanup's grace period


def api(server, method, path, token, body=None, content_type=None):
    headers = {"Authorization": f"Bearer {token}"}
    if content_type:
        headers["Content-Type"] = content_type
    status, _, payload = server.request(method, path, headers=headers, body=body)
    return status, (json.loads(payload) if payload else None)


def upload(server, token, data, chunk):
    spec = json.dumps({"filename": "big.bin", "size_bytes": len(data), "chunk_size_bytes": chunk})
    status, session = api(server, "POST", BASE, token, spec, "application/json")
    assert status == 201, session
    for number, start in enumerate(range(0, len(data), chunk), 1):
        status, body = api(
            server, "PUT", f"{BASE}/{session['id']}/parts/{number}", token,
            data[start : start + chunk], "application/octet-stream",
        )  # fmt: skip
        assert status == 201, body
    return session["id"]


def finalize_accepted(server, token, chunk, attempts=3):
    """A session whose finalize answered 202, and its bytes. On a fast disk an assembly
    can finish before the request first looks (200 at once, which is right); each
    further attempt uploads a file twice as large."""
    size = 12 * chunk + 123
    for _ in range(attempts):
        data = os.urandom(size)
        session_id = upload(server, token, data, chunk)
        status, body = api(server, "POST", f"{BASE}/{session_id}/finalize", token)
        if status == 202:
            return session_id, data
        assert status == 200, body
        size *= 2
    pytest.fail(f"every finalize of {attempts} finished before answering (200, not 202)")


def worker_pid(server):
    children = psutil.Process(server.process.pid).children()
    assert len(children) == 1, children
    return children[0].pid


def kill_mid_assembly(server, token, session_id, timeout=60):
    """SIGKILL the worker once GET shows assembled bytes; what GET said just before."""
    pid = worker_pid(server)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, body = api(server, "GET", f"{BASE}/{session_id}", token)
        if body["status"] != "finalizing" or body["assembly"]["assembled_bytes"] > 0:
            os.kill(pid, signal.SIGKILL)
            return body
        time.sleep(0.005)
    pytest.fail("the assembly never started")


def no_leftovers():
    temp = list(storage.list_temp())
    final = storage.final_storage()
    uploads = []
    if not storage.backend().has_volumes:
        client = final.connection.meta.client
        uploads = client.list_multipart_uploads(Bucket=final.bucket_name).get("Uploads", [])
    return temp, uploads


def check_stored_once(session_id, data):
    import hashlib

    session = UploadSession.objects.get(pk=session_id)
    assert session.status == UploadSession.Status.COMPLETE
    file = IngestFile.objects.get(pk=session.file_id)
    assert file.sha256 == hashlib.sha256(data).hexdigest()
    stored = hashlib.sha256()
    for chunk in iter_final(file.storage_key):
        stored.update(chunk)
    assert stored.hexdigest() == file.sha256
    assert OutboxEvent.objects.filter(aggregate_id=str(file.pk)).count() == 1


def test_a_worker_killed_mid_assembly_is_finished_by_portal_finalize(
    subprocess_env, user, zygote, tmp_path, report
):
    env = {
        **subprocess_env,
        "PORTAL_FINALIZE_WAIT_SECONDS": "0",
        "WEB_CONCURRENCY": "1",
        "PORTAL_CHUNK_SIZE_MAX": "8MiB",
    }
    server = ServerProcess.gunicorn(env, tmp_path)
    token = create_token(user)[1]
    chunk = 5 * MIB if env.get("PORTAL_STORAGE") == "s3" else 1 * MIB
    try:
        session_id, data = finalize_accepted(server, token, chunk)
        seen = kill_mid_assembly(server, token, session_id)
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(30)
    finally:
        server.stop()
    runner = zygote(subprocess_env)
    if UploadSession.objects.get(pk=session_id).status == UploadSession.Status.FINALIZING:
        early = runner.run("portal_finalize", "--json")  # the lease has not run out yet
        assert early.exit == 0 and early.summary("portal_finalize")["completed"] == 0
    taken = runner.run("portal_finalize", "--json", travel_seconds=LATER)
    assert taken.exit == 0, taken.stderr
    cleaned = runner.run("portal_cleanup", "--json", travel_seconds=LATER)
    assert cleaned.exit == 0, cleaned.stderr

    check_stored_once(session_id, data)
    assert no_leftovers() == ([], [])
    report(
        "finalize killed mid-assembly",
        assembled_at_kill=seen.get("assembly", {}).get("assembled_bytes"),
        total=len(data),
        taken_over=taken.summary("portal_finalize")["completed"],
        uploads_aborted=cleaned.summary("portal_cleanup")["steps"]["sweep"]["counts"].get(
            "uploads_aborted"
        ),
    )


@pytest.mark.postgres
def test_concurrent_takeovers_and_a_client_finalize_store_once(
    postgres_only, subprocess_env, user, zygote, tmp_path, report
):
    from django.test import Client

    from portal.services.finalize import lease
    from tests.api_helpers import Api, make_token

    api_client = Api(Client(), make_token(user))
    data = os.urandom(300 * 1024)
    session = api_client.start(data, 20 * 1024)
    api_client.upload(session["id"], data, 20 * 1024)
    lease.begin(session["id"])
    runners = [zygote(subprocess_env) for _ in range(3)]  # one each: a zygote serves one call
    outcomes = []

    def take_over(runner):
        outcomes.append(runner.run("portal_finalize", "--json", travel_seconds=LATER))

    def client_finalize():
        try:
            outcomes.append(api_client.finalize(session["id"]).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=take_over, args=(runner,)) for runner in runners]
    threads.append(threading.Thread(target=client_finalize))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    runs = [o for o in outcomes if not isinstance(o, int)]
    assert all(run.exit == 0 for run in runs), [run.stderr for run in runs]
    check_stored_once(session["id"], data)
    completed = sum(run.summary("portal_finalize")["completed"] for run in runs)
    client = [o for o in outcomes if isinstance(o, int)]
    assert client and client[0] in (200, 202)
    report("concurrent takeover", takeovers_completed=completed, client_status=client[0])
