"""Pins for the JSON upload API's corners (issue #31, the parts area): each test kills
mutants of ``tests/mutant_area_parts.py`` that the feature's own tests let through
(boundaries, response fields, log fields, replays racing a close, lease arithmetic)."""

import json
import logging
from datetime import timedelta

import pytest
import time_machine
from django.db import OperationalError
from django.utils import timezone

from portal import storage
from portal.models import UploadSession
from portal.services import chunks, sessions
from portal.services.finalize import lease
from tests.api_helpers import BASE, Api, error_code, make_token, sha256


@pytest.fixture
def api(client, user, portal_storage):
    return Api(client, make_token(user))


def events(caplog, name):
    """The records of log event ``name`` (the "portal" logger set to INFO first)."""
    return [record for record in caplog.records if getattr(record, "event", None) == name]


# --- creating a session


def test_names_keys_and_types_of_exactly_the_most_characters_are_taken(api):
    longest = "x" * sessions.MAX_NAME_CHARS
    response = api.create(
        filename=longest,
        size_bytes=1,
        content_type="a/" + "b" * (sessions.MAX_NAME_CHARS - 2),
        idempotency_key="k" * sessions.MAX_IDEMPOTENCY_KEY_CHARS,
    )
    assert response.status_code == 201, response.content
    assert response.json()["filename"] == longest
    too_long = api.create(filename="a", size_bytes=1, content_type="a/" + "b" * 254)
    assert (too_long.status_code, error_code(too_long)) == (400, "invalid_content_type")


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"filename": "a\ud800b"}, "invalid_filename"),  # a lone surrogate (category Cs)
        ({"content_type": "text plain/x"}, "invalid_content_type"),
        ({"content_type": "text/"}, "invalid_content_type"),
        ({"content_type": "/plain"}, "invalid_content_type"),
    ],
)
def test_a_surrogate_or_a_malformed_content_type_is_400(api, fields, code):
    response = api.create(**{"filename": "a", "size_bytes": 1, **fields})
    assert (response.status_code, error_code(response)) == (400, code)
    assert not UploadSession.objects.exists()


@pytest.mark.parametrize(("configured", "chosen"), [(10, 100), (5000, 1000), (500, 500)])
def test_the_default_part_size_is_held_within_its_bounds(api, settings, configured, chosen):
    settings.PORTAL_CHUNK_SIZE = configured
    settings.PORTAL_CHUNK_SIZE_MIN, settings.PORTAL_CHUNK_SIZE_MAX = 100, 1000
    response = api.create(filename="a", size_bytes=2500)
    assert response.status_code == 201
    assert response.json()["chunk_size_bytes"] == chosen
    assert response.json()["total_parts"] == -(-2500 // chosen)


def test_a_default_part_size_grown_for_many_parts_stops_at_the_largest(api, settings):
    settings.PORTAL_CHUNK_SIZE = settings.PORTAL_CHUNK_SIZE_MIN = 100
    settings.PORTAL_CHUNK_SIZE_MAX = 150
    size = 200 * sessions.MAX_PARTS
    response = api.create(filename="a", size_bytes=size)
    assert response.status_code == 201
    assert response.json()["chunk_size_bytes"] == 150


def test_an_empty_idempotency_key_is_no_key(api):
    first = api.create(filename="a", size_bytes=1, idempotency_key="")
    second = api.create(filename="a", size_bytes=1, idempotency_key="")
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
    assert set(UploadSession.objects.values_list("idempotency_key", flat=True)) == {""}


def test_the_created_answer_and_its_log_record_describe_the_session(api, caplog, settings):
    caplog.set_level(logging.INFO, logger="portal")
    response = api.create(filename="report.pdf", size_bytes=2500, chunk_size_bytes=1000)
    body = response.json()
    row = UploadSession.objects.get()
    assert body == {
        "id": str(row.id),
        "status": "init",
        "filename": "report.pdf",
        "size_bytes": 2500,
        "chunk_size_bytes": 1000,
        "total_parts": 3,
        "expires_at": row.expires_at.isoformat(),
    }
    [record] = events(caplog, "session.created")
    assert (record.session_id, record.file_id) == (str(row.id), str(row.file_id))
    assert (record.size_bytes, record.total_parts) == (2500, 3)


def test_a_json_body_of_exactly_the_most_bytes_is_read(api, client):
    from portal.views.uploads import MAX_JSON_BYTES

    spec = {"filename": "a", "size_bytes": 1, "pad": ""}
    spec["pad"] = "x" * (MAX_JSON_BYTES - len(json.dumps(spec)))
    body = json.dumps(spec)
    assert len(body) == MAX_JSON_BYTES
    response = client.post(BASE, data=body, content_type="application/json", headers=api.headers)
    assert response.status_code == 201, response.content
    over = client.post(BASE, data=body + " ", content_type="application/json", headers=api.headers)
    assert (over.status_code, error_code(over)) == (413, "body_too_large")


def test_an_empty_create_body_is_an_empty_object(api, client):
    response = client.post(BASE, data=b"", content_type="application/json", headers=api.headers)
    assert (response.status_code, error_code(response)) == (400, "invalid_size_bytes")


# --- closing sessions


def test_a_long_reason_is_kept_to_the_column(user, portal_storage):
    session, _ = sessions.create_session(user, {"filename": "a", "size_bytes": 10})
    reason = "r" * 254 + "st"
    ended = sessions.close_sessions(
        [(session.pk, session.file_id)], UploadSession.Status.FAILED, reason
    )
    assert ended == 1
    assert UploadSession.objects.get().failure_reason == reason[:255]


def test_a_finalizing_sessions_status_shows_the_assembly(api):
    session = api.start(b"x" * 25, 10)["id"]
    api.upload(session, b"x" * 25, 10)
    assert lease.begin(session)
    UploadSession.objects.filter(pk=session).update(assembled_bytes=20)
    body = api.status(session).json()
    assert body["status"] == "finalizing"
    assert body["assembly"] == {"assembled_bytes": 20, "total_bytes": 25, "attempts": 1}
    assert "file" not in body


def test_a_complete_sessions_file_says_when_it_was_stored(api):
    session = api.start(b"abc", 3)["id"]
    api.upload(session, b"abc", 3)
    file = api.finalize(session).json()["file"]
    row = UploadSession.objects.select_related("file").get().file
    assert file["stored_at"] == row.stored_at.isoformat()
    assert (file["sha256"], file["status"], file["size_bytes"]) == (sha256(b"abc"), "stored", 3)
    assert api.status(session).json()["file"] == file


# --- parts


def test_the_last_parts_receipt_gives_its_own_size_and_the_sessions_count(api, caplog):
    caplog.set_level(logging.INFO, logger="portal")
    session = api.start(b"x" * 25, 10)["id"]
    response = api.put(session, 3, b"x" * 5)
    assert response.status_code == 201
    body = response.json()
    row = UploadSession.objects.get()
    assert body == {
        "part_number": 3,
        "size_bytes": 5,
        "sha256": sha256(b"x" * 5),
        "completed_parts": 1,
        "total_parts": 3,
        "expires_at": row.expires_at.isoformat(),
    }
    assert api.put(session, 3, b"x" * 5).json() == body  # a replay answers the same
    [record] = events(caplog, "part.received")
    assert (record.session_id, record.part_number, record.size_bytes) == (session, 3, 5)


def test_a_replay_whose_session_closed_meanwhile_is_410(api, monkeypatch):
    """The replay's own check, under the session's lock: the session was aborted after the
    request's first look (here: once the replay was found out, before it is answered)."""
    session = api.start(b"x" * 20, 10)["id"]
    assert api.put(session, 1, b"x" * 10).status_code == 201
    discard = chunks.discard

    def abort_then_discard(stored, place):
        UploadSession.objects.update(status="aborted")
        return discard(stored, place)

    monkeypatch.setattr(chunks, "discard", abort_then_discard)
    response = api.put(session, 1, b"x" * 10)
    assert (response.status_code, error_code(response)) == (410, "session_aborted")


class BreaksOff:
    """A request body whose connection drops after ``size`` bytes."""

    def __init__(self, data):
        self.data = data

    def read(self, size=-1):
        if not self.data:
            raise ConnectionResetError("peer went away")
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk


def test_a_body_that_breaks_off_says_so(api, user):
    from portal.services.errors import BadRequest

    session = api.start(b"x" * 1000, 1000)["id"]
    with pytest.raises(BadRequest) as refused:
        chunks.receive_part(user, session, 1, BreaksOff(b"x" * 400), "1000")
    assert refused.value.code == "incomplete_part"
    assert "broke off (ConnectionResetError)" in refused.value.message
    assert not UploadSession.objects.get().completed_parts


# --- the views


def test_a_database_outage_is_503_with_a_retry(api, monkeypatch, caplog):
    def unreachable(owner, session_id):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(sessions, "session_status", unreachable)
    response = api.status("00000000-0000-0000-0000-000000000000")
    assert (response.status_code, error_code(response)) == (503, "database_unavailable")
    assert response["Retry-After"] == "5"
    assert "could not connect" not in response.content.decode()
    assert "database unavailable: OperationalError" in caplog.text


def test_a_finalize_that_waits_in_vain_answers_202_with_a_poll_after_two_seconds(
    api, settings, monkeypatch
):
    from portal.services.finalize import request

    settings.PORTAL_FINALIZE_WAIT_SECONDS = 0
    session = api.start(b"abc", 3)["id"]
    api.upload(session, b"abc", 3)
    monkeypatch.setattr(request, "assemble", lambda pk: None)  # the assembly never ends
    response = api.finalize(session)
    assert response.status_code == 202
    assert (response["Retry-After"], response.json()["status"]) == ("2", "finalizing")


def test_a_finalize_done_just_after_its_wait_answers_200_with_the_file(api, monkeypatch):
    from portal.services import finalize

    session = api.start(b"abc", 3)["id"]
    api.upload(session, b"abc", 3)
    real = finalize.finalize_session

    def done_a_moment_late(owner, session_id):
        real(owner, session_id)
        return None

    monkeypatch.setattr(finalize, "finalize_session", done_a_moment_late)
    response = api.finalize(session)
    assert response.status_code == 200
    assert response.json() == {"file": api.status(session).json()["file"]}


@pytest.mark.parametrize("header", ["Bearer", "Bearer   ", "Token abc", "abc"])
def test_a_header_without_a_bearer_token_is_missing_token(client, user, header):
    response = client.get(f"{BASE}/x", headers={"Authorization": header})
    assert (response.status_code, error_code(response)) == (401, "missing_token")
    assert response["WWW-Authenticate"] == 'Bearer realm="portal"'


# --- guards


def test_a_session_counts_against_the_quotas_until_the_instant_it_expires(api, settings):
    settings.PORTAL_MAX_OPEN_SESSIONS_PER_USER = 1
    settings.PORTAL_SESSION_TTL_HOURS = 1
    with time_machine.travel("2030-01-01 10:00:00Z", tick=False):
        assert api.create(filename="a", size_bytes=10).status_code == 201
    with time_machine.travel("2030-01-01 10:59:59Z", tick=False):
        refused = api.create(filename="b", size_bytes=10)
        assert (refused.status_code, error_code(refused)) == (429, "quota_exceeded")
    with time_machine.travel("2030-01-01 11:00:00Z", tick=False):
        assert api.create(filename="b", size_bytes=10).status_code == 201


def test_a_finalizing_session_counts_against_the_quotas_even_past_its_expiry(api, settings):
    settings.PORTAL_MAX_OPEN_SESSIONS_PER_USER = 1
    session = api.start(b"abc", 3)["id"]
    api.upload(session, b"abc", 3)
    assert lease.begin(session)
    UploadSession.objects.update(expires_at=timezone.now() - timedelta(hours=1))
    refused = api.create(filename="b", size_bytes=10)
    assert (refused.status_code, error_code(refused)) == (429, "quota_exceeded")


def test_a_volume_with_exactly_the_minimum_free_takes_new_sessions(api, settings, monkeypatch):
    settings.PORTAL_MIN_FREE_BYTES = 1000
    free = {"temp": 1000, "final": 1000}
    monkeypatch.setattr(storage, "free_bytes", free.get)
    assert api.create(filename="a", size_bytes=10).status_code == 201
    free["final"] = 999
    refused = api.create(filename="b", size_bytes=10)
    assert (refused.status_code, error_code(refused)) == (507, "insufficient_storage")
    assert "final volume" in refused.json()["error"]["message"]


def test_a_full_storage_is_507_and_an_outage_503(api, monkeypatch, caplog):
    session = api.start(b"x" * 20, 10)["id"]
    for raised, status, code in (
        (storage.StorageFull("no space left"), 507, "insufficient_storage"),
        (storage.StorageUnavailable("no route to host"), 503, "storage_unavailable"),
    ):

        def failing(name, raised=raised):
            raise raised

        monkeypatch.setattr(storage, "free_bytes", failing)
        response = api.put(session, 1, b"x" * 10)
        assert (response.status_code, error_code(response)) == (status, code)
        assert "no space" not in response.content.decode()
        assert "no route" not in response.content.decode()
    records = events(caplog, "storage.unavailable")
    assert [r.error_type for r in records] == ["StorageFull", "StorageUnavailable"]
    assert [r.levelno for r in records] == [logging.WARNING] * 2
    assert (records[0].session_id, records[0].part_number) == (session, 1)


def test_a_replay_whose_session_was_deleted_meanwhile_is_404(api, monkeypatch):
    session = api.start(b"x" * 20, 10)["id"]
    assert api.put(session, 1, b"x" * 10).status_code == 201
    discard = chunks.discard

    def prune_then_discard(stored, place):
        result = discard(stored, place)
        UploadSession.objects.all().delete()
        return result

    monkeypatch.setattr(chunks, "discard", prune_then_discard)
    response = api.put(session, 1, b"x" * 10)
    assert (response.status_code, error_code(response)) == (404, "session_not_found")


def test_an_abort_is_logged_with_its_session_and_file(api, caplog):
    caplog.set_level(logging.INFO, logger="portal")
    session = api.start(b"abc", 3)["id"]
    assert api.abort(session).status_code == 204
    assert api.abort(session).status_code == 204  # nothing ended: nothing logged
    row = UploadSession.objects.get()
    [record] = events(caplog, "session.aborted")
    assert (record.session_id, record.file_id) == (session, str(row.file_id))


def test_a_monitoring_token_opens_no_upload_endpoint(client, user):
    from portal.models import ApiToken
    from portal.services.tokens import create_token

    raw = create_token(user, purpose=ApiToken.Purpose.MONITORING)[1]
    response = Api(client, raw).create(filename="a", size_bytes=1)
    assert (response.status_code, error_code(response)) == (403, "wrong_token_purpose")
    assert not UploadSession.objects.exists()
