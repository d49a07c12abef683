"""Pins for the JSON upload API (issue #31, the upload area): what a client sees of a
refusal (status, code, message, details), the JSON body limit by ``Content-Length``, and
models that agree with their migrations."""

import io
import json
import os

import pytest
from django.core.management import call_command

from portal import storage
from portal.models import UploadPart, UploadSession
from tests.api_helpers import BASE, Api, error_code, make_token
from tests.conftest import apply_storage

MAX_JSON_BYTES = 64 * 1024  # docs/api.md: "a JSON body over 64 KiB" is 413


@pytest.fixture
def api(client, user, portal_storage):
    return Api(client, make_token(user))


def post_raw(api, body):
    return api.client.generic(
        "POST", BASE, data=body, content_type="application/json", headers=api.headers
    )


def padded(size):
    """A valid create body of exactly ``size`` bytes (JSON whitespace at its end)."""
    body = json.dumps({"filename": "a.bin", "size_bytes": 1}).encode()
    return body + b" " * (size - len(body))


# --- the JSON body


def test_a_json_body_of_exactly_64_kib_is_read(api):
    response = post_raw(api, padded(MAX_JSON_BYTES))
    assert response.status_code == 201, response.content
    assert response.json()["filename"] == "a.bin"


def test_a_created_session_answers_the_documented_fields(api, settings):
    response = api.create(filename="a.bin", size_bytes=25, chunk_size_bytes=10)
    assert response.status_code == 201
    session = UploadSession.objects.get()
    assert response.json() == {
        "id": str(session.id),
        "status": "init",
        "filename": "a.bin",
        "size_bytes": 25,
        "chunk_size_bytes": 10,
        "total_parts": 3,
        "expires_at": session.expires_at.isoformat(),
    }


def test_a_json_body_over_64_kib_is_413_by_its_content_length(api):
    """Refused by its declared length, although its first 64 KiB parse as a valid body."""
    response = post_raw(api, padded(MAX_JSON_BYTES + 1))
    assert response.status_code == 413
    assert response.json() == {
        "error": {
            "code": "body_too_large",
            "message": f"a JSON body may have at most {MAX_JSON_BYTES} bytes",
        }
    }
    assert not UploadSession.objects.exists()


@pytest.mark.parametrize("length", ["-1", "1e3", " 5"])
def test_a_json_body_whose_content_length_is_not_a_number_is_413(api, length):
    response = api.client.generic(
        "POST",
        BASE,
        data=b'{"filename": "a", "size_bytes": 1}',
        content_type="application/json",
        headers=api.headers,
        CONTENT_LENGTH=length,
    )
    assert (response.status_code, error_code(response)) == (413, "body_too_large")
    assert not UploadSession.objects.exists()


def test_json_nested_too_deeply_says_so(api):
    response = post_raw(api, b"[" * 30_000 + b"]" * 30_000)
    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "invalid_json", "message": "the JSON body is nested too deeply"}
    }


# --- quotas: the error names the setting and its value (docs/api.md, 429)


def test_the_open_sessions_quota_error_names_the_setting_and_the_limit(api, settings):
    settings.PORTAL_MAX_OPEN_SESSIONS_PER_USER = 2
    settings.PORTAL_MAX_PENDING_BYTES_PER_USER = 0
    for name in ("a", "b"):
        assert api.create(filename=name, size_bytes=10).status_code == 201
    refused = api.create(filename="c", size_bytes=10)
    assert refused.status_code == 429
    assert refused.json() == {
        "error": {
            "code": "quota_exceeded",
            "message": "you have 2 open upload sessions, the limit is 2: finish or abort one first",
            "limit": "PORTAL_MAX_OPEN_SESSIONS_PER_USER",
            "allowed": 2,
        }
    }


def test_the_pending_bytes_quota_error_names_the_setting_and_the_limit(api, settings):
    settings.PORTAL_MAX_OPEN_SESSIONS_PER_USER = 0
    settings.PORTAL_MAX_PENDING_BYTES_PER_USER = 100
    assert api.create(filename="a", size_bytes=60).status_code == 201
    refused = api.create(filename="b", size_bytes=41)
    assert refused.status_code == 429
    assert refused.json() == {
        "error": {
            "code": "quota_exceeded",
            "message": "your open upload sessions declare 60 bytes; 41 more would exceed the "
            "limit of 100",
            "limit": "PORTAL_MAX_PENDING_BYTES_PER_USER",
            "allowed": 100,
        }
    }
    assert api.create(filename="c", size_bytes=40).status_code == 201


# --- parts


def test_a_part_cut_short_says_how_many_bytes_arrived(api):
    session = api.start(b"x" * 10, 5)
    response = api.client.generic(
        "PUT",
        f"{BASE}/{session['id']}/parts/1",
        data=b"",
        content_type="application/octet-stream",
        headers=api.headers,
        CONTENT_LENGTH="5",
        **{"wsgi.input": io.BytesIO(b"abc")},
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "incomplete_part",
        "message": "part 1 ended after 3 of 5 bytes",
    }
    assert not UploadPart.objects.exists()


def test_a_part_another_request_is_writing_is_409_with_its_message(
    client, user, settings, data_dir
):
    apply_storage(settings, "local", data_dir)
    api = Api(client, make_token(user))
    data = os.urandom(8)
    session = api.start(data, 4)["id"]
    with storage.backend().part_range(session, 4, 4):  # another request's part 2
        busy = api.put(session, 2, data[4:])
    assert busy.status_code == 409
    assert busy.json()["error"] == {
        "code": "part_in_progress",
        "message": "a part is being uploaded by another request; retry once it ended",
    }
    assert not UploadPart.objects.exists()
    assert api.put(session, 2, data[4:]).status_code == 201


@pytest.mark.parametrize("number, body", [(1, b"abc"), (9, b"abc"), (1, b"abcd"), (2, b"")])
def test_a_part_of_a_closed_session_is_410_whatever_else_is_wrong_with_it(
    api, settings, number, body
):
    """The session's state is looked at first: not a 400 for a part number out of range,
    a 413 for a long body, a 507 for room, after it was aborted."""
    session = api.start(b"abcdef", 3)
    assert api.abort(session["id"]).status_code == 204
    settings.PORTAL_FREE_SPACE_RESERVE_BYTES = 2**60
    response = api.put(session["id"], number, body)
    assert (response.status_code, error_code(response)) == (410, "session_aborted")
    assert not UploadPart.objects.exists()


# --- authentication


def test_no_token_is_401_with_the_bearer_challenge(client, db):
    response = client.post(BASE, data="{}", content_type="application/json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="portal"'
    assert error_code(response) == "missing_token"


def test_a_valid_token_is_accepted_and_an_unknown_one_is_401(api, client):
    assert api.create(filename="a", size_bytes=1).status_code == 201
    unknown = Api(client, "pt_" + "x" * 40).create(filename="a", size_bytes=1)
    assert unknown.status_code == 401
    assert unknown["WWW-Authenticate"] == 'Bearer realm="portal", error="invalid_token"'


# --- the schema


def test_the_models_agree_with_their_migrations(db):
    """A model change without its migration leaves the database and the code disagreeing."""
    out = io.StringIO()
    try:
        call_command("makemigrations", "portal", "--check", "--dry-run", stdout=out)
    except SystemExit as exc:  # --check exits 1 when a migration is missing
        pytest.fail(f"models and migrations disagree:\n{out.getvalue()}" + str(exc))


# --- creating a session: what each refusal says


@pytest.mark.parametrize(
    "body, status, code, message",
    [
        ([], 400, "invalid_json", "the body must be a JSON object"),
        ({"size_bytes": 1}, 400, "invalid_filename", "filename must be a non-empty string"),
        (
            {"filename": "x" * 256, "size_bytes": 1},
            400,
            "invalid_filename",
            "filename is longer than 255 characters",
        ),
        (
            {"filename": "a\x07", "size_bytes": 1},
            400,
            "invalid_filename",
            "filename contains control characters",
        ),
        (
            {"filename": "a", "size_bytes": 1, "content_type": "text"},
            400,
            "invalid_content_type",
            "content_type must look like 'type/subtype'",
        ),
        (
            {"filename": "a", "size_bytes": True},
            400,
            "invalid_size_bytes",
            "size_bytes must be an integer",
        ),
        (
            {"filename": "a", "size_bytes": 0},
            400,
            "invalid_size_bytes",
            "size_bytes must be at least 1",
        ),
        (
            {"filename": "a", "size_bytes": 1001},
            413,
            "file_too_large",
            "size_bytes 1001 is over the limit of 1000 bytes",
        ),
        (
            {"filename": "a", "size_bytes": 10, "chunk_size_bytes": 1.5},
            400,
            "invalid_chunk_size_bytes",
            "chunk_size_bytes must be an integer",
        ),
        (
            {"filename": "a", "size_bytes": 10, "chunk_size_bytes": 101},
            400,
            "invalid_chunk_size_bytes",
            "chunk_size_bytes must be between 2 and 100",
        ),
        (
            {"filename": "a", "size_bytes": 10, "idempotency_key": "k" * 256},
            400,
            "invalid_idempotency_key",
            "idempotency_key is longer than 255 characters",
        ),
        (
            {"filename": "a", "size_bytes": 10, "idempotency_key": 7},
            400,
            "invalid_idempotency_key",
            "idempotency_key must be a non-empty string",
        ),
    ],
)
def test_a_refused_create_says_what_is_wrong(api, settings, body, status, code, message):
    settings.PORTAL_MAX_FILE_SIZE = 1000
    settings.PORTAL_CHUNK_SIZE_MIN, settings.PORTAL_CHUNK_SIZE_MAX = 2, 100
    response = post_raw(api, json.dumps(body))
    assert response.status_code == status
    assert response.json() == {"error": {"code": code, "message": message}}
    assert not UploadSession.objects.exists()


def test_a_part_size_needing_more_than_100000_parts_is_refused(api, settings):
    settings.PORTAL_CHUNK_SIZE_MIN = 1
    response = api.create(filename="a", size_bytes=100_001, chunk_size_bytes=1)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid_chunk_size_bytes",
        "message": "chunk_size_bytes 1 would need more than 100000 parts",
    }
    assert api.create(filename="a", size_bytes=100_000, chunk_size_bytes=1).status_code == 201


def test_a_key_reused_for_another_file_names_what_differs(api):
    first = dict(filename="a.bin", size_bytes=10, chunk_size_bytes=5, idempotency_key="k")
    assert api.create(**first).status_code == 201
    reused = api.create(**{**first, "filename": "b.bin", "size_bytes": 12})
    assert reused.status_code == 409
    assert reused.json()["error"] == {
        "code": "idempotency_key_reused",
        "message": "idempotency_key was already used for another request (its filename, "
        "size_bytes differed: filename='a.bin', size_bytes=10)",
    }


def test_a_closed_or_busy_session_says_why_it_takes_no_part(api):
    aborted = api.start(b"abc", 3)
    api.abort(aborted["id"])
    response = api.put(aborted["id"], 1, b"abc")
    assert response.json()["error"] == {
        "code": "session_aborted",
        "message": "the upload session is aborted: aborted by the client",
    }
    finalizing = api.start(b"abc", 3)
    api.upload(finalizing["id"], b"abc", 3)
    UploadSession.objects.filter(pk=finalizing["id"]).update(status="finalizing")
    response = api.put(finalizing["id"], 1, b"abc")
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "session_finalizing",
        "message": "the upload session is being finalized; ask for its status with GET",
    }


# --- storage outages


def test_a_part_while_the_temp_root_is_missing_is_503_retry_after_5(
    client, user, settings, data_dir, caplog
):
    apply_storage(settings, "local", data_dir)
    api = Api(client, make_token(user))
    session = api.start(b"x" * 20, 10)
    (data_dir / "temp").rmdir()
    response = api.put(session["id"], 1, b"x" * 10)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"] == {
        "code": "storage_unavailable",
        "message": "storage is unavailable while storing a part; nothing was lost, try again "
        "shortly",
    }
    assert not UploadPart.objects.exists()
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "storage.unavailable"]
    assert (record.session_id, record.part_number) == (session["id"], 1)


# --- methods and paths


def test_a_method_an_endpoint_lacks_is_405_naming_the_allowed_ones(api):
    listed = api.client.get(BASE, headers=api.headers)
    assert (listed.status_code, listed["Allow"]) == (405, "POST")
    assert listed.json()["error"] == {
        "code": "method_not_allowed",
        "message": "GET is not allowed here; use POST",
    }
    session = api.start(b"abc", 3)
    put = api.client.put(f"{BASE}/{session['id']}", headers=api.headers)
    assert (put.status_code, put["Allow"]) == (405, "DELETE, GET, HEAD")
    assert put.json()["error"]["message"] == "PUT is not allowed here; use DELETE, GET, HEAD"


def test_an_unknown_path_under_the_api_is_a_json_404(api):
    response = api.client.get("/api/v1/uploads/nothing-here", headers=api.headers)
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "no_such_endpoint",
            "message": "no API endpoint at /api/v1/uploads/nothing-here",
        }
    }
