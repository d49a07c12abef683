"""tus 1.0 with the rest of the portal: the JSON API on the same session, cleanup's expiry
and sweep, HEAD finalizing what is all in, parts hashed once, the database gate and storage
outages (503), methods not taken (405), chunked bodies (411), and hostile headers."""

import hashlib
import shutil

import pytest
import time_machine
from django.db import OperationalError

from portal import dbgate, storage
from portal.models import IngestFile, TusUpload, UploadPart, UploadSession
from portal.services.cleanup import run_cleanup, sweep
from tests import objects
from tests.api_helpers import Api, error_code, make_token
from tests.conftest import apply_storage
from tests.tus_helpers import TUS, Tus, b64, metadata, stored_file_bytes

CHUNK = 10


@pytest.fixture
def tus(client, user, portal_storage, settings):
    settings.PORTAL_CHUNK_SIZE = CHUNK
    return Tus(client, make_token(user))


def test_parts_sent_through_the_json_api_meanwhile_fail_the_patch_cleanly(tus, client, user):
    path = tus.start(30)
    upload_id = path.rsplit("/", 1)[1]
    assert Api(client, make_token(user)).put(upload_id, 2, b"j" * 10).status_code == 201
    response = tus.patch(path, 0, b"t" * 25)
    assert (response.status_code, error_code(response)) == (409, "upload_changed_elsewhere")
    parts = UploadPart.objects.order_by("part_number")
    assert [objects.part_bytes(part) for part in parts] == [b"t" * 10, b"j" * 10]
    assert tus.offset(path) == 20  # the offset counts whatever is recorded, from either API


def test_a_json_api_replay_of_a_part_written_by_tus_is_200_with_its_sha256(tus, client, user):
    """A part tus wrote in place records no sha256 of its own: the same bytes again are a
    replay (200, the part's real sha256), other bytes a conflict, and the file is kept."""
    data = bytes(range(30))
    path = tus.start(len(data))
    assert tus.patch(path, 0, data[:20]).status_code == 204
    upload_id = path.rsplit("/", 1)[1]
    api = Api(client, make_token(user))
    replay = api.put(upload_id, 1, data[:10])
    assert replay.status_code == 200, replay.content
    assert replay.json()["sha256"] == hashlib.sha256(data[:10]).hexdigest()
    other = api.put(upload_id, 2, b"z" * 10)
    assert (other.status_code, error_code(other)) == (409, "part_conflict")
    assert tus.patch(path, 20, data[20:]).status_code == 204
    assert stored_file_bytes() == data


def test_a_replay_of_a_tus_part_whose_bytes_are_gone_is_a_conflict(
    client, user, settings, data_dir
):
    """A part tus wrote in place has no sha256 of its own; with its range cut off the file,
    a replay cannot be matched: 409 saying the bytes are gone, not an error."""
    apply_storage(settings, "local", data_dir)
    settings.PORTAL_CHUNK_SIZE = 10
    tus = Tus(client, make_token(user))
    path = tus.start(30)
    assert tus.patch(path, 0, bytes(range(20))).status_code == 204
    part = UploadPart.objects.get(part_number=1)
    assert part.sha256 == "" and part.temp_offset == 0
    with open(data_dir / "temp" / part.temp_key, "r+b") as file:
        file.truncate(5)
    response = Api(client, make_token(user)).put(path.rsplit("/", 1)[1], 1, bytes(range(10)))
    assert (response.status_code, error_code(response)) == (409, "part_conflict")
    assert "its bytes are gone" in response.json()["error"]["message"]


def test_the_sweep_keeps_an_active_uploads_tail_and_removes_it_once_terminal(tus, settings):
    path = tus.start(20)
    assert tus.patch(path, 0, b"x" * 7).status_code == 204
    tail = TusUpload.objects.get().tail_key
    settings.PORTAL_ORPHAN_GRACE_MINUTES = 0
    assert sweep.untracked_keys([tail]) == []
    UploadSession.objects.update(status=UploadSession.Status.FAILED)
    assert sweep.untracked_keys([tail]) == [tail]


def test_head_finalizes_an_upload_whose_bytes_are_all_in(tus, client, user):
    """Its parts came through the JSON API (or the last PATCH's finalize failed): HEAD
    stores the file before it answers the offset a client takes for done."""
    data = b"h" * 25
    path = tus.start(len(data))
    api = Api(client, make_token(user))
    api.upload(path.rsplit("/", 1)[1], data, CHUNK)
    assert UploadSession.objects.get().status == UploadSession.Status.IN_PROGRESS
    head = tus.head(path)
    assert (head.status_code, head["Upload-Offset"]) == (200, "25")
    assert "Upload-Expires" not in head
    assert stored_file_bytes() == data
    assert tus.patch(path, 25, b"").status_code == 204
    response = tus.patch(path, 25, b"more")
    assert (response.status_code, error_code(response)) == (413, "exceeds_upload_length")


def test_parts_written_in_place_are_hashed_once_into_the_files_hash(tus):
    """They record no sha256 of their own; the stored file's sha256 is the file hash's, and
    where that hash cannot be resumed, finalize reads their ranges for it."""
    if not storage.backend().assembles_in_place:
        pytest.skip("parts are written in place on local disk only")
    data = bytes(range(25))
    path = tus.start(len(data))
    assert tus.patch(path, 0, data[:20]).status_code == 204
    assert list(UploadPart.objects.values_list("sha256", flat=True)) == ["", ""]
    UploadSession.objects.update(hash_state=b"damaged")
    assert tus.patch(path, 20, data[20:]).status_code == 204
    assert stored_file_bytes() == data
    assert IngestFile.objects.get().sha256 == hashlib.sha256(data).hexdigest()


def assert_503(response, code, method="PATCH"):
    assert (response.status_code, response["Retry-After"]) == (503, "5"), method
    assert response["Tus-Resumable"] == "1.0.0", method
    if method != "HEAD":  # a HEAD answer has no body
        assert error_code(response) == code


def test_while_the_database_gate_is_closed_everything_but_options_is_503(tus):
    path = tus.start(5)
    with time_machine.travel("2030-01-01 10:00:00Z", tick=False):
        dbgate.gate.failed(OperationalError("connection timeout expired"))
        try:
            answers = {
                "POST": tus.create(5),
                "HEAD": tus.head(path),
                "PATCH": tus.patch(path, 0, b"12345"),
                "DELETE": tus.delete(path),
            }
            options = tus.client.options(TUS)
        finally:
            dbgate.gate.succeeded()
    for method, response in answers.items():
        assert_503(response, "database_unavailable", method)
    assert options.status_code == 204
    assert UploadSession.objects.count() == 1
    assert tus.patch(path, 0, b"12345").status_code == 204


def test_answers_no_view_gave_carry_the_tus_and_cors_headers(tus, settings):
    """The gate's 503 comes before any view, the JSON 404 of a path below the endpoint from
    another one: a browser client must still read them (CORS) and see ``Tus-Resumable``."""
    settings.PORTAL_CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    path = tus.start(5)
    origin = {"Origin": "https://app.example.com"}
    with time_machine.travel("2030-01-01 10:00:00Z", tick=False):
        dbgate.gate.failed(OperationalError("connection timeout expired"))
        try:
            refused = tus.patch(path, 0, b"12345", **origin)
        finally:
            dbgate.gate.succeeded()
    unknown = tus.head(f"{path}/parts", **origin)
    elsewhere = tus.client.get("/api/v1/uploads/nothing", headers=origin)
    for response in (refused, unknown):
        assert response["Tus-Resumable"] == "1.0.0"
        assert response["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert (refused.status_code, unknown.status_code) == (503, 404)
    assert unknown["Cache-Control"] == "no-store"
    assert "Tus-Resumable" not in elsewhere and "Access-Control-Allow-Origin" not in elsewhere


def test_a_patch_while_the_temp_root_is_a_file_is_503_and_lands_once_it_is_back(
    tus, settings, data_dir
):
    apply_storage(settings, "local", data_dir)
    data = bytes(range(25))
    path = tus.start(len(data))
    assert tus.patch(path, 0, data[:10]).status_code == 204
    shutil.move(data_dir / "temp", data_dir / "temp.away")
    (data_dir / "temp").write_text("not a directory")
    assert_503(tus.patch(path, 10, data[10:]), "storage_unavailable")
    (data_dir / "temp").unlink()
    shutil.move(data_dir / "temp.away", data_dir / "temp")
    assert tus.offset(path) == 10
    assert tus.patch(path, 10, data[10:]).status_code == 204
    assert stored_file_bytes() == data


@pytest.mark.s3
def test_an_s3_outage_is_503_and_the_upload_resumes(tus, settings, data_dir, moto_s3_factory):
    s3 = moto_s3_factory()
    apply_storage(settings, "s3", data_dir, s3=s3, bucket=s3.new_bucket())
    data = bytes(range(25))
    path = tus.start(len(data))
    assert tus.patch(path, 0, data[:13]).status_code == 204
    s3.stop()
    assert_503(tus.patch(path, 13, data[13:]), "storage_unavailable")
    s3.start()
    assert tus.offset(path) == 13
    assert tus.patch(path, 13, data[13:]).status_code == 204
    assert stored_file_bytes() == data


def test_cleanup_expires_an_upload_then_removes_it(tus, settings):
    settings.PORTAL_SESSION_TTL_HOURS = 1
    settings.PORTAL_ORPHAN_GRACE_MINUTES = 1
    settings.PORTAL_FAILED_SESSION_RETENTION_DAYS = 1
    with time_machine.travel("2030-01-01 10:00:00Z", tick=False):
        path = tus.start(25)
        assert tus.patch(path, 0, b"e" * 13).status_code == 204
        tail = TusUpload.objects.get().tail_key
    with time_machine.travel("2030-01-01 12:00:00Z", tick=False):
        run_cleanup()
        response = tus.head(path)
        assert response.status_code == 410
        assert not objects.temp_exists(tail)
    with time_machine.travel("2030-01-03 12:00:00Z", tick=False):
        run_cleanup()
        assert tus.head(path).status_code == 404
        assert not TusUpload.objects.exists()


def test_methods_the_tus_paths_do_not_take_are_405_with_allow(tus):
    path = tus.start(5)
    for method, url, allow in (
        ("GET", TUS, "OPTIONS, POST"),
        ("PATCH", TUS, "OPTIONS, POST"),
        ("GET", path, "DELETE, HEAD, OPTIONS, PATCH"),
        ("PUT", path, "DELETE, HEAD, OPTIONS, PATCH"),
        ("POST", path, "DELETE, HEAD, OPTIONS, PATCH"),
    ):
        response = tus.client.generic(method, url, headers=tus.headers)
        assert (response.status_code, error_code(response)) == (405, "method_not_allowed")
        assert response["Allow"] == allow
    override = tus.client.post(path, headers={**tus.headers, "X-HTTP-Method-Override": "PUT"})
    assert (override.status_code, override["Allow"]) == (405, "DELETE, HEAD, OPTIONS, PATCH")
    assert tus.offset(path) == 0


def test_chunked_bodies_are_411_and_an_absent_length_is_an_empty_body(tus):
    """tus 1.0 names no status for a missing length (a POST without Upload-Length is 400,
    as in tusd); a chunked body has no Content-Length to check against the upload's."""
    path = tus.start(5)
    chunked = {"Transfer-Encoding": "chunked"}
    response = tus.patch(path, 0, b"12345", **chunked)
    assert (response.status_code, error_code(response)) == (411, "length_required")
    capitals = tus.patch(path, 0, b"12345", **{"Transfer-Encoding": "gzip, Chunked"})
    assert (capitals.status_code, error_code(capitals)) == (411, "length_required")
    created = tus.create(5, body=b"12345", **chunked)
    assert (created.status_code, error_code(created)) == (411, "length_required")
    assert UploadSession.objects.count() == 1 and tus.offset(path) == 0


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"Upload-Offset": "1" * 30}, "invalid_upload_offset"),
        ({"Upload-Offset": "-1"}, "invalid_upload_offset"),
        ({"Upload-Offset": "0x10"}, "invalid_upload_offset"),
        ({"Upload-Checksum": "sha1"}, "invalid_upload_checksum"),
        ({"Upload-Checksum": "sha1 not-base64!"}, "invalid_upload_checksum"),
        ({"Upload-Checksum": "sha256 " + b64(b"short")}, "invalid_upload_checksum"),
    ],
)
def test_hostile_patch_headers_are_400(tus, headers, code):
    path = tus.start(5)
    response = tus.client.generic(
        "PATCH",
        path,
        b"12345",
        content_type="application/offset+octet-stream",
        headers={**tus.headers, "Upload-Offset": "0", **headers},
    )
    assert (response.status_code, error_code(response)) == (400, code)
    assert tus.offset(path) == 0


def test_hostile_creation_headers_are_400(tus):
    too_long = metadata(filename="x" * 9000)
    for headers in (
        {"Upload-Length": "9" * 40},
        {"Upload-Length": "5", "Upload-Metadata": too_long},
        {"Upload-Length": "5", "Upload-Metadata": metadata(filename="a\nb")},
        {"Upload-Length": "5", "Upload-Metadata": "filename " + b64(b"\xff\xfe")},
    ):
        response = tus.client.generic("POST", TUS, headers={**tus.headers, **headers})
        assert response.status_code == 400, (headers, response.content)
    assert not UploadSession.objects.exists()
