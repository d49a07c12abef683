"""Session creation, status, abort and ownership through the Django test client."""

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection

from portal.models import IngestFile, UploadSession
from tests.api_helpers import BASE, Api, error_code, make_token


@pytest.fixture
def api(client, user, portal_storage):
    return Api(client, make_token(user))


@pytest.fixture
def other_api(client, other_user):
    return Api(client, make_token(other_user))


def test_create_answers_201_with_parts_and_ttl(api, settings):
    settings.PORTAL_CHUNK_SIZE = 1000
    settings.PORTAL_SESSION_TTL_HOURS = 2
    response = api.create(filename="report.pdf", content_type="application/pdf", size_bytes=2500)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "init"
    assert (body["chunk_size_bytes"], body["total_parts"]) == (1000, 3)
    session = UploadSession.objects.get(pk=body["id"])
    assert session.file.original_filename == "report.pdf"
    assert session.file.content_type == "application/pdf"
    assert session.file.status == IngestFile.Status.UPLOADING
    assert session.expires_at - session.created_at == pytest.approx(
        timedelta(hours=2), abs=timedelta(seconds=5)
    )
    assert body["expires_at"] == session.expires_at.isoformat()


def test_requested_chunk_size_is_used_within_bounds(api, settings):
    settings.PORTAL_CHUNK_SIZE_MIN, settings.PORTAL_CHUNK_SIZE_MAX = 100, 1000
    ok = api.create(filename="a", size_bytes=1001, chunk_size_bytes=500)
    assert (ok.status_code, ok.json()["total_parts"]) == (201, 3)
    for chunk in (99, 1001, "500", 0, True):
        response = api.create(filename="a", size_bytes=1001, chunk_size_bytes=chunk)
        assert response.status_code == 400, chunk
        assert error_code(response) == "invalid_chunk_size_bytes"


def test_a_requested_chunk_size_may_make_exactly_the_most_parts_and_no_more(api, settings):
    from portal.services.sessions import MAX_PARTS

    settings.PORTAL_CHUNK_SIZE_MIN = 100
    at_limit = api.create(filename="a", size_bytes=100 * MAX_PARTS, chunk_size_bytes=100)
    assert (at_limit.status_code, at_limit.json()["total_parts"]) == (201, MAX_PARTS)
    over = api.create(filename="a", size_bytes=100 * MAX_PARTS + 1, chunk_size_bytes=100)
    assert (over.status_code, error_code(over)) == (400, "invalid_chunk_size_bytes")


def test_the_default_part_size_grows_to_keep_a_large_file_within_the_most_parts(api, settings):
    from portal.services.sessions import MAX_PARTS

    settings.PORTAL_CHUNK_SIZE = settings.PORTAL_CHUNK_SIZE_MIN = 100
    response = api.create(filename="a", size_bytes=100 * MAX_PARTS + 1)
    assert response.status_code == 201
    body = response.json()
    assert body["chunk_size_bytes"] == 101 and body["total_parts"] <= MAX_PARTS


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"filename": "", "size_bytes": 1}, "invalid_filename"),
        ({"filename": "   ", "size_bytes": 1}, "invalid_filename"),
        ({"filename": "x" * 256, "size_bytes": 1}, "invalid_filename"),
        ({"filename": "a\x00b", "size_bytes": 1}, "invalid_filename"),
        ({"filename": "a\nb", "size_bytes": 1}, "invalid_filename"),
        ({"filename": 7, "size_bytes": 1}, "invalid_filename"),
        ({"size_bytes": 1}, "invalid_filename"),
        ({"filename": "a", "size_bytes": 0}, "invalid_size_bytes"),
        ({"filename": "a", "size_bytes": -5}, "invalid_size_bytes"),
        ({"filename": "a", "size_bytes": "10"}, "invalid_size_bytes"),
        ({"filename": "a", "size_bytes": 1.5}, "invalid_size_bytes"),
        ({"filename": "a"}, "invalid_size_bytes"),
        ({"filename": "a", "size_bytes": 1, "content_type": "pdf"}, "invalid_content_type"),
        ({"filename": "a", "size_bytes": 1, "content_type": ""}, "invalid_content_type"),
        (
            {"filename": "a", "size_bytes": 1, "idempotency_key": "k" * 256},
            "invalid_idempotency_key",
        ),
        ({"filename": "a", "size_bytes": 1, "idempotency_key": 5}, "invalid_idempotency_key"),
    ],
)
def test_bad_input_is_400_and_creates_nothing(api, fields, code):
    response = api.create(**fields)
    assert response.status_code == 400
    assert error_code(response) == code
    assert response.json()["error"]["message"]
    assert not UploadSession.objects.exists()


def test_bad_json_is_400(api, client):
    for body in ("{not json", "[1, 2]", '"text"', "\xff"):
        response = client.post(
            BASE, data=body, content_type="application/json", headers=api.headers
        )
        assert response.status_code == 400
        assert error_code(response) == "invalid_json"


def test_oversized_json_body_is_413(api, client):
    body = json.dumps({"filename": "a", "size_bytes": 1, "pad": "x" * 70_000})
    response = client.post(BASE, data=body, content_type="application/json", headers=api.headers)
    assert response.status_code == 413


def test_file_over_the_limit_is_413(api, settings):
    settings.PORTAL_MAX_FILE_SIZE = 10_000
    assert api.create(filename="a", size_bytes=10_000).status_code == 201
    response = api.create(filename="a", size_bytes=10_001)
    assert response.status_code == 413
    assert error_code(response) == "file_too_large"


def test_same_idempotency_key_returns_the_same_session(api, other_api):
    first = api.create(filename="a.bin", size_bytes=10, idempotency_key="k1")
    again = api.create(filename="a.bin", size_bytes=10, idempotency_key="k1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    theirs = other_api.create(filename="a.bin", size_bytes=10, idempotency_key="k1")
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
    other = api.create(filename="a.bin", size_bytes=10, idempotency_key="k2")
    assert other.status_code == 201
    assert UploadSession.objects.count() == 3


def test_idempotency_key_reused_for_another_file_is_409(api):
    api.create(filename="a.bin", size_bytes=10, idempotency_key="k1")
    response = api.create(filename="a.bin", size_bytes=11, idempotency_key="k1")
    assert response.status_code == 409
    assert error_code(response) == "idempotency_key_reused"


@pytest.mark.parametrize(
    ("changed", "named"),
    [
        ({"filename": "b.bin"}, "filename"),
        ({"size_bytes": 11}, "size_bytes"),
        ({"content_type": "text/plain"}, "content_type"),
        ({"chunk_size_bytes": 4}, "chunk_size_bytes"),
    ],
)
def test_a_retry_must_describe_the_same_upload(api, changed, named):
    spec = {
        "filename": "a.bin",
        "size_bytes": 10,
        "content_type": "application/pdf",
        "chunk_size_bytes": 5,
        "idempotency_key": "k1",
    }
    first = api.create(**spec)
    assert api.create(**spec).json()["id"] == first.json()["id"]  # the same request: fine

    response = api.create(**{**spec, **changed})

    assert response.status_code == 409
    assert error_code(response) == "idempotency_key_reused"
    assert named in response.json()["error"]["message"]
    assert UploadSession.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("open_before", [0, 2])
def test_concurrent_duplicate_creates_make_one_session(
    postgres_only, user, portal_storage, settings, open_before
):
    """Also at the quota's edge: room for one more, and six repeats of one request race."""
    from django.test import Client

    settings.PORTAL_MAX_OPEN_SESSIONS_PER_USER = 3
    token = make_token(user)
    for index in range(open_before):
        assert Api(Client(), token).create(filename=f"f{index}", size_bytes=1).status_code == 201
    results, barrier = [], threading.Barrier(6)

    def create():
        try:
            barrier.wait()
            response = Api(Client(), token).create(
                filename="same.bin", size_bytes=100, idempotency_key="race"
            )
            results.append((response.status_code, response.json().get("id")))
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(code for code, _ in results) == [200] * 5 + [201]
    assert len({sid for _, sid in results}) == 1
    assert UploadSession.objects.count() == IngestFile.objects.count() == 1 + open_before


def test_status_reports_received_parts_as_ranges(api):
    session = api.start(b"x" * 100, 10)
    for number in (1, 2, 3, 5, 7, 8, 10):
        assert api.put(session["id"], number, b"x" * 10).status_code == 201
    body = api.status(session["id"]).json()
    assert body["status"] == "in_progress"
    assert body["received_parts"] == "1-3,5,7-8,10"
    assert (body["completed_parts"], body["bytes_received"], body["total_parts"]) == (7, 70, 10)
    assert "file" not in body
    assert body["expires_at"]


def test_unknown_malformed_and_foreign_sessions_are_404(api, other_api):
    session = api.start(b"abc", 3)
    for response in (
        other_api.status(session["id"]),
        other_api.put(session["id"], 1, b"abc"),
        other_api.finalize(session["id"]),
        other_api.abort(session["id"]),
        api.status("00000000-0000-0000-0000-000000000000"),
        api.status("not-a-uuid"),
        api.put("not-a-uuid", 1, b"abc"),
    ):
        assert response.status_code == 404
        assert error_code(response) == "session_not_found"
    assert UploadSession.objects.get().status == "init"
    assert UploadSession.objects.get().completed_parts == 0


def test_unknown_path_and_wrong_method(api, client):
    assert client.get("/api/v1/uploads", headers=api.headers).status_code == 404
    response = client.get(BASE, headers=api.headers)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert error_code(response) == "method_not_allowed"
    session = api.start(b"abc", 3)
    response = client.post(f"{BASE}/{session['id']}", headers=api.headers)
    assert response.status_code == 405
    assert response["Allow"] == "DELETE, GET, HEAD"
    assert client.get(f"{BASE}/{session['id']}/finalize", headers=api.headers).status_code == 405


def test_abort_is_204_idempotent_and_fails_the_file(api):
    session = api.start(b"abcdef", 3)
    api.put(session["id"], 1, b"abc")
    response = api.abort(session["id"])
    assert response.status_code == 204
    row = UploadSession.objects.get()
    assert row.status == "aborted" and row.finished_at is not None
    assert row.file.status == "failed"
    assert api.abort(session["id"]).status_code == 204
    status = api.status(session["id"]).json()
    assert (status["status"], status["failure_reason"]) == ("aborted", "aborted by the client")


def test_abort_of_a_complete_session_is_409_and_of_a_failed_one_410(api):
    session = api.start(b"abc", 3)
    api.put(session["id"], 1, b"abc")
    assert api.finalize(session["id"]).status_code == 200
    response = api.abort(session["id"])
    assert (response.status_code, error_code(response)) == (409, "session_complete")
    assert UploadSession.objects.get().status == "complete"

    failed = api.start(b"abc", 3)
    UploadSession.objects.filter(pk=failed["id"]).update(status="failed", failure_reason="expired")
    response = api.abort(failed["id"])
    assert (response.status_code, error_code(response)) == (410, "session_failed")


def test_abort_of_a_finalizing_session_is_409_and_leaves_it_finalizing(api):
    session = api.start(b"abc", 3)
    api.put(session["id"], 1, b"abc")
    UploadSession.objects.update(status="finalizing")
    response = api.abort(session["id"])
    assert (response.status_code, error_code(response)) == (409, "session_finalizing")
    row = UploadSession.objects.get()
    assert row.status == "finalizing" and row.file.status == "uploading"


def test_filename_never_reaches_a_storage_key(api):
    for name in ("../../etc/passwd", "/abs/path", "..\\..\\win", "a/../../b"):
        session = api.start(b"abc", 3, filename=name)
        api.upload(session["id"], b"abc", 3)
        file = api.finalize(session["id"]).json()["file"]
        assert file["filename"] == name
        row = IngestFile.objects.get(pk=file["id"])
        part_key = UploadSession.objects.get(pk=session["id"]).parts.get().temp_key
        for key in (row.storage_key, part_key):
            assert ".." not in key and not key.startswith("/") and "\\" not in key
            assert "etc" not in key and "passwd" not in key
        assert row.storage_key.endswith(row.id.hex)
    nul = api.create(filename="evil\x00../x", size_bytes=3)
    assert (nul.status_code, error_code(nul)) == (400, "invalid_filename")
