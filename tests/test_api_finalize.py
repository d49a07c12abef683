"""Finalize: order, idempotency, missing parts, corrupt parts, the outbox event."""

import io
import random
import threading
import uuid

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal import locks, storage
from portal.models import IngestFile, OutboxEvent, UploadPart, UploadSession
from tests import objects
from tests.api_helpers import Api, error_code, make_token, sha256


@pytest.fixture
def api(client, user, portal_storage):
    return Api(client, make_token(user))


def test_parts_in_random_order_finalize_to_the_original(api):
    data = random.Random(7).randbytes(10_000)
    session = api.start(data, 999, filename="r.bin", content_type="text/plain")
    order = list(range(1, 12))
    random.Random(3).shuffle(order)
    api.upload(session["id"], data, 999, order=order)
    response = api.finalize(session["id"])
    assert response.status_code == 200
    file = response.json()["file"]
    assert (file["sha256"], file["size_bytes"], file["status"]) == (sha256(data), 10_000, "stored")
    row = IngestFile.objects.get(pk=file["id"])
    assert b"".join(objects.iter_final(row.storage_key)) == data
    assert row.storage_key == storage.new_final_key(row.id, now=row.created_at)
    assert row.stored_at is not None
    session_row = UploadSession.objects.get()
    assert session_row.status == "complete" and session_row.finished_at is not None
    assert all(part.temp_key for part in UploadPart.objects.all())
    status = api.status(session["id"]).json()
    assert status["status"] == "complete" and status["file"]["sha256"] == sha256(data)


def test_finalize_writes_the_file_uploaded_event(api, user):
    session = api.start(b"hello world", 4, filename="hello.txt", content_type="text/plain")
    api.upload(session["id"], b"hello world", 4)
    file = api.finalize(session["id"]).json()["file"]
    event = OutboxEvent.objects.get()
    assert (event.event_type, event.aggregate_id, event.status) == (
        "file.uploaded",
        file["id"],
        "pending",
    )
    payload = event.payload
    assert payload["event_id"] == str(event.id)
    assert payload["file"]["sha256"] == sha256(b"hello world")
    assert payload["file"]["filename"] == "hello.txt"
    assert payload["actor"] == {"user_id": user.pk, "username": "alice"}
    # A runner finds the bytes from the payload alone (and its own S3 credentials).
    assert fetch_as_a_runner(payload["file"]["storage"]) == b"hello world"


def test_the_final_key_is_the_upload_day_then_the_file_id(api):
    """docs/design.md: ``YYYY/MM/DD/<file-id-hex>``, the day the upload began (UTC)."""
    with time_machine.travel("2030-01-02 23:59:00Z"):
        session = api.start(b"hello world", 4)
    api.upload(session["id"], b"hello world", 4)
    file = api.finalize(session["id"]).json()["file"]
    key = IngestFile.objects.get().storage_key
    assert key == f"2030/01/02/{uuid.UUID(file['id']).hex}"
    location = OutboxEvent.objects.get().payload["file"]["storage"]
    assert location["key"].endswith(key)
    assert fetch_as_a_runner(location) == b"hello world"


def fetch_as_a_runner(location):
    """Read a stored file the way the runner contract says, from the payload's fields."""
    if location["backend"] == "local":
        assert set(location) == {"backend", "bucket", "key", "path"}
        with open(location["path"], "rb") as handle:
            return handle.read()
    import boto3
    from django.conf import settings

    assert set(location) == {"backend", "bucket", "key"} and location["key"].startswith("final/")
    client = boto3.client(
        "s3",
        endpoint_url=settings.AWS_S3_ENDPOINT_URL,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return client.get_object(Bucket=location["bucket"], Key=location["key"])["Body"].read()


def test_finalize_is_idempotent(api):
    session = api.start(b"abcdef", 4)
    api.upload(session["id"], b"abcdef", 4)
    first = api.finalize(session["id"])
    again = api.finalize(session["id"])
    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json() == again.json()
    assert OutboxEvent.objects.count() == 1


def test_incomplete_session_is_409_with_the_missing_parts(api):
    session = api.start(b"x" * 100, 10)
    for number in (1, 2, 5, 9):
        api.put(session["id"], number, b"x" * 10)
    response = api.finalize(session["id"])
    assert (response.status_code, error_code(response)) == (409, "parts_missing")
    error = response.json()["error"]
    assert error["missing_parts"] == "3-4,6-8,10"
    assert error["missing_part_numbers"] == [3, 4, 6, 7, 8, 10]
    assert UploadSession.objects.get().status == "in_progress"
    assert [objects.part_bytes(part) for part in UploadPart.objects.all()] == [b"x" * 10] * 4


@pytest.mark.parametrize("damage", ["rewrite", "delete", "forget"])
def test_corrupt_or_missing_part_fails_the_session(api, damage, settings):
    data = b"0123456789" * 3
    session = api.start(data, 10)
    api.upload(session["id"], data, 10)
    part = UploadPart.objects.get(part_number=2)
    if damage == "rewrite":
        storage.delete_temp([part.temp_key])
        storage.temp_storage().save(part.temp_key, io.BytesIO(b"9876543210"))
    elif damage == "delete":
        storage.delete_temp([part.temp_key])
    else:
        UploadPart.objects.filter(pk=part.pk).update(temp_key="")
    response = api.finalize(session["id"])
    assert (response.status_code, error_code(response)) == (410, "part_corrupt")
    row = UploadSession.objects.get()
    assert row.status == "failed" and row.finished_at is not None
    assert row.assembly_lease_until is None  # portal_finalize and the stalled metric skip it
    shared = damage == "delete" and storage.backend().assembles_in_place  # the session's file
    assert ("part 1" if shared else "part 2") in row.failure_reason
    assert row.file.status == "failed" and row.file.storage_key == ""
    assert not objects.final_exists(storage.new_final_key(row.file_id, now=row.file.created_at))
    assert not OutboxEvent.objects.exists()
    again = api.finalize(session["id"])
    assert (again.status_code, error_code(again)) == (410, "session_failed")


def test_finalize_of_an_aborted_session_is_410(api):
    session = api.start(b"abc", 3)
    api.upload(session["id"], b"abc", 3)
    api.abort(session["id"])
    response = api.finalize(session["id"])
    assert (response.status_code, error_code(response)) == (410, "session_aborted")


def test_session_aborted_during_assembly_keeps_no_final_object(api, monkeypatch):
    session = api.start(b"abcdef", 3)
    api.upload(session["id"], b"abcdef", 3)
    real_write = storage.assemble_final

    def write_then_abort(*args, **kwargs):
        stored = real_write(*args, **kwargs)
        UploadSession.objects.update(status="aborted")
        return stored

    monkeypatch.setattr(storage, "assemble_final", write_then_abort)
    response = api.finalize(session["id"])
    assert (response.status_code, error_code(response)) == (410, "session_aborted")
    file = IngestFile.objects.get()
    assert file.status == "uploading" and file.storage_key == ""
    assert not objects.final_exists(storage.new_final_key(file.id, now=file.created_at))
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_second_finalize_while_one_runs_joins_it_and_answers_202(user, portal_storage, settings):
    """Another assembler holds the session (here: its lock): the request waits its bounded
    time, answers 202 with the session, and a later one gets the file."""
    from django.db import connection
    from django.test import Client

    settings.PORTAL_FINALIZE_WAIT_SECONDS = 0.5
    api = Api(Client(), make_token(user))
    session = api.start(b"abc", 3)
    api.upload(session["id"], b"abc", 3)
    held, done = threading.Event(), threading.Event()

    def hold():
        try:
            with locks.hold(f"finalize:{session['id']}"):
                held.set()
                done.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(30)
        response = api.finalize(session["id"])
        assert response.status_code == 202
        assert response.json()["status"] == "finalizing"
        assert response["Location"] == f"/api/v1/uploads/sessions/{session['id']}"
        assert api.status(session["id"]).json()["status"] == "finalizing"
    finally:
        done.set()
        thread.join()
    settings.PORTAL_FINALIZE_WAIT_SECONDS = 30
    response = api.finalize(session["id"])
    assert response.status_code == 200
    assert response.json()["file"]["sha256"] == sha256(b"abc")
    assert api.finalize(session["id"]).status_code == 200


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_file_chunking_and_order_finalizes_to_the_original(api, data):
    content = data.draw(st.binary(min_size=1, max_size=3000), label="content")
    chunk = data.draw(st.integers(min_value=1, max_value=len(content) + 10), label="chunk")
    chunk = max(chunk, -(-len(content) // 16))  # at most 16 parts: keeps examples fast
    session = api.start(content, chunk)
    order = data.draw(st.permutations(range(1, session["total_parts"] + 1)), label="order")
    api.upload(session["id"], content, chunk, order=order)
    response = api.finalize(session["id"])
    assert response.status_code == 200, response.content
    assert response.json()["file"]["sha256"] == sha256(content)
    assert response.json()["file"]["size_bytes"] == len(content)


OUTBOX_DOWN = {
    "sqlite": [
        "CREATE TRIGGER outbox_down BEFORE INSERT ON portal_outboxevent "
        "BEGIN SELECT RAISE(ABORT, 'outbox is down'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION outbox_down() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'outbox is down'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER outbox_down BEFORE INSERT ON portal_outboxevent "
        "FOR EACH ROW EXECUTE FUNCTION outbox_down()",
    ],
}
OUTBOX_UP = {
    "sqlite": ["DROP TRIGGER outbox_down"],
    "postgresql": [
        "DROP TRIGGER outbox_down ON portal_outboxevent",
        "DROP FUNCTION outbox_down()",
    ],
}


def run_sql(statements):
    from django.db import connection

    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def test_a_failing_outbox_insert_stores_nothing_and_a_retry_writes_one_event(
    api, user, transactional_db
):
    """The event is written in finalize's transaction: when it cannot be written, the file
    is not stored and the session not complete; a retried finalize succeeds, once."""
    from django.db import connection

    from portal.services import finalize

    data = b"0123456789" * 3
    session = api.start(data, 10)
    api.upload(session["id"], data, 10)
    run_sql(OUTBOX_DOWN[connection.vendor])
    try:
        assert finalize.finalize_session(user, session["id"]) is None  # not stored: 202
    finally:
        run_sql(OUTBOX_UP[connection.vendor])

    row = UploadSession.objects.select_related("file").get(pk=session["id"])
    assert row.status == UploadSession.Status.FINALIZING
    assert (row.file.status, row.file.storage_key, row.file.sha256) == ("uploading", "", "")
    assert not OutboxEvent.objects.exists()

    response = api.finalize(session["id"])
    assert response.status_code == 200, response.content
    assert response.json()["file"]["sha256"] == sha256(data)
    assert OutboxEvent.objects.filter(aggregate_id=str(row.file_id)).count() == 1
    assert api.finalize(session["id"]).status_code == 200
    assert OutboxEvent.objects.count() == 1
