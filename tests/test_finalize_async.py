"""Finalize in bounded time: 202 and polling, server-side assembly on S3, takeover by
``portal_finalize``, and what cleanup leaves alone or reclaims around assemblies."""

import json
import os
import subprocess
import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.db import connections
from django.utils import timezone

from portal import storage
from portal.models import IngestFile, OutboxEvent, UploadPart, UploadSession
from portal.services.finalize import lease
from tests import fixtures
from tests.api_helpers import Api, error_code, make_token, sha256
from tests.commands import run_command
from tests.conftest import PYTHON, ROOT, apply_storage
from tests.finalize_helpers import dead_assembly

MIB = 1024 * 1024
Status = UploadSession.Status
api = fixtures.api  # a fixture of every module; named here for older imports


def poll_until_done(api, session_id, timeout=60):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        body = api.status(session_id).json()
        seen.append(body)
        if body["status"] != "finalizing":
            return body, seen
        time.sleep(0.05)
    pytest.fail(f"still finalizing after {timeout}s: {seen[-1]}")


def test_a_finalize_past_the_wait_answers_202_and_the_assembly_completes(
    api, settings, monkeypatch
):
    from portal.services.finalize import request

    settings.PORTAL_FINALIZE_WAIT_SECONDS = 0
    data = os.urandom(200 * 1024)
    session = api.start(data, 10 * 1024)
    api.upload(session["id"], data, 10 * 1024)
    answered = threading.Event()  # the assembly goes on only after the answer (no race)
    assemble = request.assemble
    monkeypatch.setattr(request, "assemble", lambda pk: answered.wait(10) and assemble(pk))

    response = api.finalize(session["id"])
    answered.set()

    assert response.status_code == 202
    assert response.json()["status"] == "finalizing"
    assert response.json()["assembly"]["total_bytes"] == len(data)
    assert response["Location"] == f"/api/v1/uploads/sessions/{session['id']}"
    done, _ = poll_until_done(api, session["id"])
    assert done["status"] == "complete" and done["file"]["sha256"] == sha256(data)
    assert OutboxEvent.objects.count() == 1
    # Asking again is the idempotent 200 it always was.
    assert api.finalize(session["id"]).json()["file"]["sha256"] == sha256(data)


def test_a_finalizing_session_takes_no_parts_and_cannot_be_aborted(api):
    session = api.start(b"x" * 20, 10)
    api.upload(session["id"], b"x" * 20, 10)
    lease.begin(session["id"])

    response = api.put(session["id"], 1, b"x" * 10)
    assert (response.status_code, error_code(response)) == (409, "session_finalizing")
    response = api.abort(session["id"])
    assert (response.status_code, error_code(response)) == (409, "session_finalizing")


def test_progress_from_a_transfer_thread_is_recorded_and_leaves_no_connection_open(api):
    """boto3 reads the S3 stream on a thread of its own: the progress it reports there
    lands in the row, and that thread's connection is closed again, not left idle."""
    data = os.urandom(3000)
    session = api.start(data, 1000)
    lease.begin(session["id"])
    record = lease.progress_recorder(session["id"])
    left_open = []

    def transfer_thread():
        record(2000)
        left_open.append(connections["default"].connection is not None)

    thread = threading.Thread(target=transfer_thread)
    thread.start()
    thread.join(timeout=30)
    record(3000)

    assert left_open == [False]
    assert connections["default"].connection is not None  # the caller's own stays open
    row = UploadSession.objects.get(pk=session["id"])
    assert (row.status, row.assembled_bytes) == (Status.FINALIZING, 3000)


def test_an_assembly_longer_than_its_lease_keeps_it_with_every_part(api, settings, monkeypatch):
    """Each part takes most of a lease here, the whole assembly three: the progress after
    each part extends the lease, so portal_finalize's claim never takes a live assembly."""
    data = os.urandom(3000)
    session = api.start(data, 1000)
    api.upload(session["id"], data, 1000)
    UploadSession.objects.update(hashed_parts=0, hash_state=None)  # every part read
    recorder, claimed, caller = lease.progress_recorder, [], threading.get_ident()

    with time_machine.travel(timezone.now(), tick=False) as clock:

        def slow_parts(session_pk):
            record = recorder(session_pk)

            def after_a_part(assembled_bytes):
                clock.shift(timedelta(seconds=lease.LEASE_SECONDS - 1))
                record(assembled_bytes)
                claimed.append(lease.claim_expired())  # what portal_finalize does
                if threading.get_ident() != caller:
                    connections.close_all()

            return after_a_part

        monkeypatch.setattr(lease, "progress_recorder", slow_parts)
        response = api.finalize(session["id"])

    assert response.status_code == 200, response.content
    assert response.json()["file"]["sha256"] == sha256(data)
    assert len(claimed) >= 3 and set(claimed) == {None}
    assert UploadSession.objects.get(pk=session["id"]).assembly_attempts == 1


def test_cleanup_never_expires_or_reclaims_a_finalizing_session(api, user):
    from portal.services import cleanup

    session = api.start(b"x" * 20, 10)
    api.upload(session["id"], b"x" * 20, 10)
    lease.begin(session["id"])
    UploadSession.objects.filter(pk=session["id"]).update(
        expires_at=timezone.now() - timedelta(days=30)
    )

    results = cleanup.run_cleanup(cleanup.CleanupOptions(now=timezone.now() + timedelta(days=30)))

    assert all(result.failed == 0 for result in results)
    assert UploadSession.objects.get().status == Status.FINALIZING
    assert len([p for p in UploadPart.objects.all() if p.temp_key]) == 2
    listed = {item.key for item in storage.list_temp()}
    assert listed == {part.temp_key for part in UploadPart.objects.all()}


def run_finalize_command(env, *args):
    result = subprocess.run(
        [PYTHON, "manage.py", "portal_finalize", "--json", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    summaries = [
        line for line in lines if line.get("job") == "portal_finalize" and "level" not in line
    ]
    return result, (summaries[0] if summaries else None)


def in_process_finalize():
    result = run_command("portal_finalize", "--json")
    return result.code, json.loads(result.out)


def test_portal_finalize_takes_over_a_dead_assembly_exactly_once(api, subprocess_env):
    """The process boundary: exit code and the JSON summary among the log lines."""
    data = os.urandom(50 * 1024)
    session_id = dead_assembly(api, data, 10 * 1024)

    result, summary = run_finalize_command(subprocess_env)

    assert result.returncode == 0, result.stderr
    assert (summary["completed"], summary["outcome"]) == (1, "ok")
    session = UploadSession.objects.select_related("file").get(pk=session_id)
    assert session.status == Status.COMPLETE and session.file.sha256 == sha256(data)
    assert OutboxEvent.objects.filter(aggregate_id=str(session.file_id)).count() == 1
    code, summary = in_process_finalize()
    assert code == 0 and summary["completed"] == 0
    assert OutboxEvent.objects.count() == 1


def test_portal_finalize_leaves_an_assembly_whose_lock_is_held(api, lock_holder):
    session_id = dead_assembly(api, b"y" * 30, 10)
    holder = lock_holder(f"finalize:{session_id}")

    code, summary = in_process_finalize()

    assert code == 0
    assert summary["busy"] == 1 and summary["completed"] == 0
    assert UploadSession.objects.get().status == Status.FINALIZING
    holder.release(f"finalize:{session_id}")
    UploadSession.objects.update(assembly_lease_until=timezone.now() - timedelta(seconds=1))
    assert in_process_finalize()[1]["completed"] == 1


def test_an_assembly_that_keeps_failing_is_given_up(api):
    from portal.services.finalize import MAX_ATTEMPTS

    session_id = dead_assembly(api, b"z" * 30, 10)
    UploadSession.objects.update(assembly_attempts=MAX_ATTEMPTS)

    code, summary = in_process_finalize()

    assert code == 0
    assert summary["failed"] == 1
    session = UploadSession.objects.get(pk=session_id)
    assert session.status == Status.FAILED
    assert "gave up" in session.failure_reason


# --- S3: the final object built by S3 itself ----------------------------------------------


@pytest.fixture
def s3_api(client, user, settings, data_dir, moto_s3):
    bucket = moto_s3.new_bucket()
    apply_storage(settings, "s3", data_dir, s3=moto_s3, bucket=bucket)
    settings.PORTAL_CHUNK_SIZE_MAX = 16 * MIB
    return Api(client, make_token(user)), moto_s3.client(), bucket


@pytest.mark.s3
def test_s3_copies_large_parts_into_the_final_object_server_side(s3_api):
    api, client, bucket = s3_api
    data = os.urandom(2 * 5 * MIB + 1000)
    session = api.start(data, 5 * MIB)
    api.upload(session["id"], data, 5 * MIB)

    response = api.finalize(session["id"])

    assert response.status_code == 200, response.content
    assert response.json()["file"]["sha256"] == sha256(data)
    key = IngestFile.objects.get().storage_key
    head = client.head_object(Bucket=bucket, Key=f"final/{key}")
    assert head["ETag"].strip('"').endswith("-3")  # a multipart object of the 3 parts
    assert head["ContentLength"] == len(data)
    body = client.get_object(Bucket=bucket, Key=f"final/{key}")["Body"].read()
    assert body == data
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@pytest.mark.s3
def test_s3_a_corrupt_part_fails_the_session_and_aborts_the_copy(s3_api):
    api, client, bucket = s3_api
    data = os.urandom(2 * 5 * MIB + 10)
    session = api.start(data, 5 * MIB)
    api.upload(session["id"], data, 5 * MIB)
    part = UploadPart.objects.get(part_number=2)
    client.put_object(Bucket=bucket, Key=f"temp/{part.temp_key}", Body=os.urandom(5 * MIB))

    response = api.finalize(session["id"])

    assert (response.status_code, error_code(response)) == (410, "part_corrupt")
    assert UploadSession.objects.get().status == Status.FAILED
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    listed = client.list_objects_v2(Bucket=bucket, Prefix="final/")
    assert listed.get("KeyCount", 0) == 0


@pytest.mark.s3
def test_sweep_aborts_the_multipart_uploads_of_dead_assemblies_only(s3_api):
    from portal.services import cleanup

    api, client, bucket = s3_api
    dead = client.create_multipart_upload(Bucket=bucket, Key="final/2030/01/01/dead")["UploadId"]
    live = client.create_multipart_upload(Bucket=bucket, Key="final/2030/01/01/live")["UploadId"]
    session = api.start(b"x" * 20, 10)
    api.upload(session["id"], b"x" * 20, 10)
    lease.begin(session["id"])
    lease.record_upload(session["id"], live)

    later = timezone.now() + timedelta(days=1)
    result = cleanup.sweep_temp_storage(cleanup.CleanupOptions(now=later))

    assert result.counts["uploads_aborted"] == 1 and result.failed == 0
    remaining = {u["UploadId"] for u in client.list_multipart_uploads(Bucket=bucket)["Uploads"]}
    assert remaining == {live} and dead not in remaining


def test_a_process_runs_a_bounded_number_of_assemblies_and_hands_the_rest_back(
    api, settings, monkeypatch
):
    import threading

    from portal.services.finalize import request

    settings.PORTAL_FINALIZE_WAIT_SECONDS = 0
    monkeypatch.setattr(request, "_assembly_slots", threading.BoundedSemaphore(0))
    session = api.start(b"x" * 20, 10)
    api.upload(session["id"], b"x" * 20, 10)

    response = api.finalize(session["id"])

    assert response.status_code == 202
    row = UploadSession.objects.get()
    assert row.status == Status.FINALIZING
    assert row.assembly_lease_until <= timezone.now()  # portal_finalize may claim it now
    assert lease.claim_expired() == row.pk


@pytest.mark.django_db(transaction=True)
def test_a_finalize_past_the_bound_waits_for_a_free_slot_within_its_wait(
    user, portal_storage, settings, monkeypatch
):
    """A busy process is no reason for a 202 when a slot frees up within the wait."""
    import threading

    from django.test import Client

    from portal.services.finalize import request

    settings.PORTAL_FINALIZE_WAIT_SECONDS = 30
    slots = threading.BoundedSemaphore(1)
    monkeypatch.setattr(request, "_assembly_slots", slots)
    api = Api(Client(), make_token(user))
    session = api.start(b"x" * 20, 10)
    api.upload(session["id"], b"x" * 20, 10)
    slots.acquire()  # another assembly holds the only slot for a moment
    threading.Timer(0.5, slots.release).start()

    response = api.finalize(session["id"])

    assert response.status_code == 200
    assert UploadSession.objects.get().status == Status.COMPLETE


@pytest.mark.django_db(transaction=True)
def test_finalizes_that_join_a_running_assembly_wait_for_it_like_the_first(
    user, portal_storage, settings
):
    """Four finalizes while another request's assembler holds the session for a second:
    each waits (up to ``PORTAL_FINALIZE_WAIT_SECONDS``) and answers 200 with the file."""
    from django.test import Client

    from portal import locks
    from portal.services.finalize.assembly import assemble

    settings.PORTAL_FINALIZE_WAIT_SECONDS = 20
    token = make_token(user)
    data = os.urandom(30)
    session = Api(Client(), token).start(data, 10)
    Api(Client(), token).upload(session["id"], data, 10)
    pk = session["id"]
    assert lease.begin(pk)
    held, results = threading.Event(), []

    def slow_assembler():
        try:
            with locks.hold(f"finalize:{pk}"):
                held.set()
                time.sleep(1)
                assemble(pk)
        finally:
            connections.close_all()

    def finalize():
        try:
            response = Api(Client(), token).finalize(pk)
            results.append((response.status_code, response.json().get("file", {}).get("sha256")))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=slow_assembler)]
    threads[0].start()
    assert held.wait(10)
    started = time.monotonic()
    threads += [threading.Thread(target=finalize) for _ in range(4)]
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert results == [(200, sha256(data))] * 4
    assert time.monotonic() - started >= 0.5  # they waited for the assembly
    assert OutboxEvent.objects.count() == 1
