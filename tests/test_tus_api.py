"""tus 1.0 over raw HTTP (Django's test client): every status code the endpoint answers."""

import hashlib
import os
import threading

import pytest
import time_machine
from django.db import connection

from portal import storage
from portal.models import IngestFile, OutboxEvent, TusUpload, UploadPart, UploadSession
from portal.services import filehash
from portal.storage import sha256state
from tests import objects
from tests.api_helpers import Api, error_code, make_token, sha256
from tests.tus_helpers import TUS, Tus, b64, metadata, stored_file_bytes


def test_options_advertises_the_protocol_without_a_token(client):
    response = client.options(TUS)
    assert response.status_code == 204
    assert response["Tus-Resumable"] == response["Tus-Version"] == "1.0.0"
    assert response["Tus-Extension"] == (
        "creation,creation-with-upload,expiration,termination,checksum"
    )
    assert int(response["Tus-Max-Size"]) > 0
    assert response["Tus-Checksum-Algorithm"] == "sha1,md5,sha256"


def test_an_upload_in_patches_across_part_boundaries_is_stored_once_with_its_event(tus):
    data = bytes(range(37))
    path = tus.start(len(data), **{"Upload-Metadata": metadata(filename="a.txt", filetype="t/x")})
    head = tus.head(path)
    assert head.status_code == 200
    assert (head["Upload-Offset"], head["Upload-Length"]) == ("0", "37")
    assert head["Cache-Control"] == "no-store"
    assert head["Upload-Metadata"] == metadata(filename="a.txt", filetype="t/x")
    assert "GMT" in head["Upload-Expires"]

    offset = 0
    for size in (7, 7, 15, 8):  # the tail of part 1, then part 2 in two PATCHes, ...
        response = tus.patch(path, offset, data[offset : offset + size])
        assert response.status_code == 204, response.content
        offset += size
        assert int(response["Upload-Offset"]) == offset == tus.offset(path)
        assert ("GMT" in response.get("Upload-Expires", "")) == (offset < len(data))  # if open

    assert stored_file_bytes() == data
    file = IngestFile.objects.get()
    assert (file.original_filename, file.content_type, file.sha256) == (
        "a.txt",
        "t/x",
        sha256(data),
    )
    assert UploadSession.objects.get().status == UploadSession.Status.COMPLETE
    assert OutboxEvent.objects.filter(event_type="file.uploaded").count() == 1
    assert TusUpload.objects.get().tail_key == ""
    assert set(objects.own_temp_keys()) <= {p.temp_key for p in UploadPart.objects.all()}


def test_the_files_hash_is_saved_as_parts_arrive_so_finalize_need_not_read_them(tus, settings):
    """With S3 parts big enough to copy (or parts in place on local disk: finalize links
    the file) the session's file hash is carried across the PATCHes, also through tails."""
    settings.PORTAL_CHUNK_SIZE = 5 * 1024 * 1024
    data = os.urandom(2 * settings.PORTAL_CHUNK_SIZE + 12345)
    path = tus.start(len(data))
    for start, end in ((0, 3_000_000), (3_000_000, 7_654_321), (7_654_321, len(data))):
        assert tus.patch(path, start, data[start:end]).status_code == 204
    session = UploadSession.objects.get()
    assert stored_file_bytes() == data
    assert IngestFile.objects.get().sha256 == sha256(data)
    assert session.hashed_parts == (3 if filehash.applies(session) else 0)


def test_uppy_names_and_an_empty_metadata_header_are_accepted(tus):
    tus.start(5, **{"Upload-Metadata": metadata(name="p.png", type="image/png")})
    tus.start(5, **{"Upload-Metadata": ""})  # tuspy sends this
    names = IngestFile.objects.order_by("created_at").values_list("original_filename", flat=True)
    assert list(names) == ["p.png", "upload"]
    assert IngestFile.objects.filter(content_type="image/png").count() == 1


def test_creation_with_upload_and_method_override(tus):
    data = b"0123456789abcde"
    response = tus.create(len(data), body=data[:12])
    assert response.status_code == 201
    assert response["Upload-Offset"] == "12"
    path = response["Location"].removeprefix("http://testserver")
    override = tus.client.post(
        path,
        data=data[12:],
        content_type="application/offset+octet-stream",
        headers={**tus.headers, "Upload-Offset": "12", "X-HTTP-Method-Override": "PATCH"},
    )
    assert override.status_code == 204
    assert stored_file_bytes() == data


@pytest.mark.parametrize("version", [None, "0.2.2", "2.0.0"])
def test_other_protocol_versions_are_412(client, user, version):
    headers = {"Authorization": f"Bearer {make_token(user)}", "Upload-Length": "5"}
    if version:
        headers["Tus-Resumable"] = version
    response = client.post(TUS, headers=headers)
    assert response.status_code == 412
    assert response["Tus-Version"] == "1.0.0"
    assert error_code(response) == "tus_version_unsupported"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "upload_length_required"),
        ({"Upload-Length": "-4"}, "invalid_upload_length"),
        ({"Upload-Length": "0"}, "invalid_size_bytes"),
        ({"Upload-Length": "5", "Upload-Metadata": "filename a.txt"}, "invalid_upload_metadata"),
        ({"Upload-Length": "5", "Upload-Metadata": "a YQ==,a YQ=="}, "invalid_upload_metadata"),
        ({"Upload-Length": "5", "Upload-Metadata": "a YQ==,,b"}, "invalid_upload_metadata"),
        (
            {"Upload-Length": "5", "Upload-Metadata": metadata(sha256="abc")},
            "invalid_upload_metadata",
        ),
        (
            {"Upload-Length": "5", "Upload-Metadata": metadata(filetype="nonsense")},
            "invalid_content_type",
        ),
        ({"Upload-Length": "5", "Upload-Concat": "partial"}, "concatenation_unsupported"),
        ({"Upload-Defer-Length": "1"}, "defer_length_unsupported"),
    ],
)
def test_bad_creations_are_400_with_a_code(tus, headers, code):
    response = tus.client.generic("POST", TUS, headers={**tus.headers, **headers})
    assert response.status_code == 400, response.content
    assert error_code(response) == code
    assert not UploadSession.objects.exists()


def test_a_patch_without_offset_or_with_a_bad_checksum_header_is_400(tus):
    path = tus.start(5)
    response = tus.client.generic(
        "PATCH", path, b"12345", content_type="application/offset+octet-stream", headers=tus.headers
    )
    assert (response.status_code, error_code(response)) == (400, "upload_offset_required")
    bad = tus.patch(path, 0, b"12345", **{"Upload-Checksum": "crc32 AAAA"})
    assert (bad.status_code, error_code(bad)) == (400, "checksum_algorithm_unsupported")
    assert tus.offset(path) == 0


def test_another_owners_unknown_or_json_api_uploads_are_404(tus, client, other_user):
    path = tus.start(5)
    other = Tus(client, make_token(other_user))
    assert other.head(path).status_code == 404
    assert error_code(other.patch(path, 0, b"12345")) == "upload_not_found"
    assert other.delete(path).status_code == 404
    assert tus.head(TUS + "00000000-0000-0000-0000-000000000000").status_code == 404
    assert tus.head(TUS + "not-a-uuid").status_code == 404
    session = Api(client, make_token(other_user)).start(b"x" * 5, 5)
    assert other.head(TUS + session["id"]).status_code == 404
    assert tus.patch(path, 0, b"12345").status_code == 204  # its owner's PATCH still lands


def test_a_patch_at_another_offset_is_409_and_changes_nothing(tus):
    path = tus.start(20)
    assert tus.patch(path, 0, b"x" * 4).status_code == 204
    response = tus.patch(path, 0, b"y" * 4)
    assert response.status_code == 409
    assert error_code(response) == "offset_mismatch"
    assert response.json()["error"]["offset"] == 4
    assert tus.patch(path, 9, b"y").status_code == 409
    assert tus.offset(path) == 4


def test_expired_and_terminated_uploads_are_410(tus, settings):
    settings.PORTAL_SESSION_TTL_HOURS = 1
    with time_machine.travel("2030-01-01 10:00:00Z", tick=False):
        expiring = tus.start(20)
        assert tus.patch(expiring, 0, b"x" * 4).status_code == 204
    with time_machine.travel("2030-01-01 11:30:00Z", tick=False):
        assert tus.head(expiring).status_code == 410
        response = tus.patch(expiring, 4, b"x" * 4)
        assert (response.status_code, error_code(response)) == (410, "session_expired")

    path = tus.start(20)
    assert tus.patch(path, 0, b"x" * 15).status_code == 204
    tail = TusUpload.objects.get(session__status="in_progress").tail_key
    assert tail and objects.temp_exists(tail)
    assert tus.delete(path).status_code == 204
    assert not objects.temp_exists(tail)
    assert tus.head(path).status_code == 410
    assert tus.patch(path, 15, b"x" * 5).status_code == 410


@pytest.mark.parametrize(
    ("authorization", "code"),
    [(None, "missing_token"), ("Basic dXNlcjpw", "missing_token"), ("Bearer x", "invalid_token")],
)
def test_every_method_but_options_without_a_valid_token_is_401(tus, authorization, code):
    path = tus.start(5)
    anonymous = Tus(tus.client, None)
    if authorization:
        anonymous.headers = {**anonymous.headers, "Authorization": authorization}
    answers = {
        "POST": anonymous.create(5),
        "PATCH": anonymous.patch(path, 0, b"12345"),
        "DELETE": anonymous.delete(path),
        "HEAD": anonymous.head(path),
    }
    for method, response in answers.items():
        assert response.status_code == 401, method
        assert response["WWW-Authenticate"].startswith('Bearer realm="portal"')
        assert response["Tus-Resumable"] == "1.0.0"
        if method != "HEAD":  # a HEAD answer has no body
            assert error_code(response) == code
    assert UploadSession.objects.count() == 1 and tus.offset(path) == 0


def test_sizes_over_the_limit_or_past_the_length_are_413(tus, settings):
    settings.PORTAL_MAX_FILE_SIZE = 100
    response = tus.create(101)
    assert (response.status_code, error_code(response)) == (413, "file_too_large")
    path = tus.start(10)
    response = tus.patch(path, 0, b"x" * 11)
    assert (response.status_code, error_code(response)) == (413, "exceeds_upload_length")
    assert tus.offset(path) == 0


def test_a_patch_of_another_content_type_is_415(tus):
    path = tus.start(5)
    response = tus.patch(path, 0, b"12345", content_type="application/octet-stream")
    assert (response.status_code, error_code(response)) == (415, "unsupported_media_type")
    assert tus.offset(path) == 0
    created = tus.client.post(
        TUS, data=b"12345", content_type="text/plain", headers={**tus.headers, "Upload-Length": "5"}
    )
    assert (created.status_code, error_code(created)) == (415, "unsupported_media_type")
    assert UploadSession.objects.count() == 1  # the body's upload was not created


def test_a_patch_while_another_holds_the_upload_is_423(tus, lock_holder):
    path = tus.start(5)
    upload_id = path.rsplit("/", 1)[1]
    holder = lock_holder(f"tus:{upload_id}")
    response = tus.patch(path, 0, b"12345")
    assert (response.status_code, error_code(response)) == (423, "upload_locked")
    holder.release(f"tus:{upload_id}")
    assert tus.patch(path, 0, b"12345").status_code == 204


def test_a_held_upload_still_answers_404_to_another_owner_and_400_to_a_bad_checksum(
    tus, client, other_user, lock_holder
):
    path = tus.start(5)
    holder = lock_holder(f"tus:{path.rsplit('/', 1)[1]}")
    other = Tus(client, make_token(other_user)).patch(path, 0, b"12345")
    bad = tus.patch(path, 0, b"12345", **{"Upload-Checksum": "crc32 AAAA"})
    holder.kill()
    holder.wait()
    assert (other.status_code, error_code(other)) == (404, "upload_not_found")
    assert (bad.status_code, error_code(bad)) == (400, "checksum_algorithm_unsupported")


def test_the_open_upload_quota_is_429(tus, settings):
    settings.PORTAL_MAX_OPEN_SESSIONS_PER_USER = 1
    tus.start(5)
    response = tus.create(5)
    assert (response.status_code, error_code(response)) == (429, "quota_exceeded")
    assert UploadSession.objects.count() == 1


def test_no_room_is_507(tus, settings):
    settings.PORTAL_MIN_FREE_BYTES = 2**60
    response = tus.create(5)
    if storage.free_bytes("temp") is None:
        pytest.skip("S3 has no volume to fill")
    assert (response.status_code, error_code(response)) == (507, "insufficient_storage")


@pytest.mark.parametrize("algorithm", ["sha1", "md5", "sha256"])
def test_a_checksum_mismatch_is_460_and_keeps_nothing_of_the_patch(tus, algorithm):
    data = b"0123456789abcdefghijklmnopqrstuvwxy"
    path = tus.start(len(data))
    assert tus.patch(path, 0, data[:4]).status_code == 204
    wrong = hashlib.new(algorithm, b"something else").digest()
    response = tus.patch(path, 4, data[4:27], **{"Upload-Checksum": f"{algorithm} {b64(wrong)}"})
    assert (response.status_code, error_code(response)) == (460, "checksum_mismatch")
    assert tus.offset(path) == 4
    assert not UploadPart.objects.exists()
    right = hashlib.new(algorithm, data[4:]).digest()
    response = tus.patch(path, 4, data[4:], **{"Upload-Checksum": f"{algorithm} {b64(right)}"})
    assert response.status_code == 204
    assert stored_file_bytes() == data


def test_a_whole_file_sha256_mismatch_is_460_and_nothing_is_stored(tus):
    data = b"x" * 25
    path = tus.start(25, **{"Upload-Metadata": metadata(sha256=sha256(b"y" * 25))})
    assert tus.patch(path, 0, data[:12]).status_code == 204
    response = tus.patch(path, 12, data[12:])
    assert (response.status_code, error_code(response)) == (460, "sha256_mismatch")
    assert tus.offset(path) == 20  # the parts before the last one are kept
    assert UploadSession.objects.get().status == UploadSession.Status.IN_PROGRESS
    assert not IngestFile.objects.filter(status="stored").exists()
    assert not OutboxEvent.objects.exists()


def test_a_whole_file_sha256_that_matches_is_stored(tus):
    data = bytes(range(200))
    path = tus.start(len(data), **{"Upload-Metadata": metadata(sha256=sha256(data).upper())})
    for offset in range(0, 200, 33):
        assert tus.patch(path, offset, data[offset : offset + 33]).status_code == 204
    assert stored_file_bytes() == data


@pytest.mark.parametrize("damage", ["another library", "corrupt"])
def test_a_saved_file_hash_not_to_be_trusted_is_read_again(tus, monkeypatch, damage):
    """The whole file's hash carried between PATCHes, written by another library or
    damaged: the parts are read back for it, and the file is stored, not refused."""
    data = bytes(range(200))
    path = tus.start(len(data), **{"Upload-Metadata": metadata(sha256=sha256(data))})
    with monkeypatch.context() as writing:
        if damage == "another library":
            writing.setattr(sha256state._library(), "writer", b"LibreSSL 3.8.2 riscv64")
        assert tus.patch(path, 0, data[:95]).status_code == 204
    state = bytes(TusUpload.objects.get().hash_state)
    if damage == "corrupt":  # one bit of the struct's state words flipped
        state = state[:-100] + bytes([state[-100] ^ 1]) + state[-99:]
        TusUpload.objects.update(hash_state=state)
    assert tus.patch(path, 95, data[95:]).status_code == 204
    assert stored_file_bytes() == data
    assert IngestFile.objects.get().sha256 == sha256(data)


def test_cors_answers_the_allowed_origins_only(client, settings, db):
    settings.PORTAL_CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    preflight = {
        "Origin": "https://app.example.com",
        "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "tus-resumable,upload-offset,authorization",
    }
    response = client.options(TUS + "some-id", headers=preflight)
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "PATCH" in response["Access-Control-Allow-Methods"]
    allowed = response["Access-Control-Allow-Headers"].lower()
    assert all(name in allowed for name in ("tus-resumable", "upload-offset", "authorization"))
    exposed = response["Access-Control-Expose-Headers"]
    for name in ("Location", "Upload-Offset", "Upload-Length", "Upload-Expires", "Tus-Version"):
        assert name in exposed
    other = client.options(TUS, headers={**preflight, "Origin": "https://evil.example"})
    assert not any(name.startswith("Access-Control-") for name in other.headers)
    refused = client.post(TUS, headers={"Origin": "https://app.example.com"})
    assert refused.status_code == 412
    assert refused["Access-Control-Allow-Origin"] == "https://app.example.com"


def test_cors_knows_an_allowed_origin_in_any_case_and_every_answer_varies_on_origin(
    client, settings, db
):
    settings.PORTAL_CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    preflight = {"Access-Control-Request-Method": "POST"}
    capitals = client.options(TUS, headers={**preflight, "Origin": "HTTPS://App.Example.COM"})
    assert capitals["Access-Control-Allow-Origin"] == "HTTPS://App.Example.COM"
    for origin in ("https://app.example.com", "https://evil.example", ""):
        response = client.options(TUS, headers={**preflight, "Origin": origin})
        assert "origin" in response.get("Vary", "").lower(), origin  # caches key on it


def test_concurrent_patches_of_one_upload_land_once(tus, client, user):
    """Two PATCHes at the same offset at once: one lands, the other is 423 or 409."""
    data = b"z" * 25
    path = tus.start(len(data))
    token = make_token(user)
    outcomes = []

    def send():
        try:
            outcomes.append(Tus(type(client)(), token).patch(path, 0, data).status_code)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes)[0] == 204
    assert sorted(outcomes)[1] in (409, 423)
    assert stored_file_bytes() == data
