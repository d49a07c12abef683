"""tus at its edges: bodies that break off (ending early, a socket failing, inside a part
and past one read), a tail that storage lost bytes of, a refused PATCH after recorded
parts, the expiry a tail extends and a new upload names, Upload-Checksum in any case, the
headers a browser's preflight allows (and every name in CORS's lists), Tus-Max-Size, an
absolute Location also on a refused creation-with-upload, the collection without its slash."""

import hashlib
import io
import os

import pytest
import time_machine

from portal import storage
from portal.models import TusUpload, UploadSession
from tests.api_helpers import error_code
from tests.tus_helpers import TUS, Breaking, b64, patch_breaking, stored_file_bytes


def test_a_patch_of_a_parts_first_bytes_only_keeps_the_upload_open_for_another_ttl(tus, settings):
    settings.PORTAL_SESSION_TTL_HOURS = 1
    with time_machine.travel("2030-01-01 10:00:00Z", tick=False):
        path = tus.start(20)
    with time_machine.travel("2030-01-01 10:50:00Z", tick=False):
        response = tus.patch(path, 0, b"x" * 4)  # no whole part: only a tail
        assert response.status_code == 204
        assert response["Upload-Expires"] == "Tue, 01 Jan 2030 11:50:00 GMT"
    with time_machine.travel("2030-01-01 11:30:00Z", tick=False):
        head = tus.head(path)
        assert (head.status_code, head["Upload-Offset"]) == (200, "4")
        assert head["Upload-Expires"] == "Tue, 01 Jan 2030 11:50:00 GMT"


@pytest.mark.parametrize("end", [7, 17])  # inside the part the tail began, or the next
@pytest.mark.parametrize("error", [None, TimeoutError("timed out"), ConnectionResetError()])
def test_a_body_that_breaks_off_keeps_what_arrived_and_the_upload_resumes(tus, error, end):
    """The body ends early or the socket fails (a client gone, a read timeout): 400
    ``incomplete_body`` with the offset of what was kept, from where the client resumes;
    also when the PATCH continues a part's first bytes (the tail is read back first)."""
    data = bytes(range(40))
    path = tus.start(len(data))
    assert tus.patch(path, 0, data[:3]).status_code == 204  # a tail
    response = patch_breaking(tus, path, 3, Breaking(data[3:end], error), 30)
    assert (response.status_code, error_code(response)) == (400, "incomplete_body")
    assert response["Upload-Offset"] == str(end) and "GMT" in response["Upload-Expires"]
    assert tus.offset(path) == end
    assert tus.patch(path, end, data[end:]).status_code == 204
    assert stored_file_bytes() == data


def test_a_body_that_breaks_off_past_a_read_inside_a_part_keeps_those_bytes(tus, settings):
    """More than one read of a part's bytes arrived before the body ended: they become the
    upload's tail (in place: read back from the part's range), byte for byte."""
    settings.PORTAL_CHUNK_SIZE = 2 * storage.READ_CHUNK_BYTES + 4096
    data = os.urandom(settings.PORTAL_CHUNK_SIZE + 1000)
    path = tus.start(len(data))
    arrived = settings.PORTAL_CHUNK_SIZE - 4096
    response = patch_breaking(tus, path, 0, Breaking(data[:arrived]), len(data))
    assert (response.status_code, response["Upload-Offset"]) == (400, str(arrived))
    assert tus.patch(path, arrived, data[arrived:]).status_code == 204
    assert stored_file_bytes() == data


def test_a_tail_shorter_in_storage_than_recorded_is_409_and_the_upload_resumes(tus):
    data = bytes(range(25))
    path = tus.start(len(data))
    assert tus.patch(path, 0, data[:14]).status_code == 204  # part 1 and a tail of 4
    tail = TusUpload.objects.get().tail_key
    storage.delete_temp([tail])
    storage.temp_storage().save(tail, io.BytesIO(data[10:13]))  # one byte short
    response = tus.patch(path, 14, data[14:])
    assert (response.status_code, error_code(response)) == (409, "offset_mismatch")
    assert tus.offset(path) == 10
    assert tus.patch(path, 10, data[10:]).status_code == 204
    assert stored_file_bytes() == data


def test_a_refused_patch_leaves_the_parts_recorded_before_it(tus):
    """A checksum mismatch after whole parts were written: the PATCH's parts go, the
    upload's earlier parts stay (in place: in the same file)."""
    data = bytes(range(35))
    path = tus.start(len(data))
    assert tus.patch(path, 0, data[:10]).status_code == 204  # part 1, recorded
    wrong = f"sha256 {b64(hashlib.sha256(b'other').digest())}"
    response = tus.patch(path, 10, data[10:30], **{"Upload-Checksum": wrong})
    assert (response.status_code, error_code(response)) == (460, "checksum_mismatch")
    assert tus.offset(path) == 10
    assert tus.patch(path, 10, data[10:]).status_code == 204
    assert stored_file_bytes() == data


def test_a_new_upload_says_until_when_it_stays_open(tus):
    response = tus.create(5)
    assert response.status_code == 201
    path = response["Location"].removeprefix("http://testserver")
    assert response["Upload-Expires"] == tus.head(path)["Upload-Expires"]


def test_the_checksum_algorithm_is_read_in_any_case(tus):
    path = tus.start(5)
    checksum = f"SHA256 {b64(hashlib.sha256(b'12345').digest())}"
    response = tus.patch(path, 0, b"12345", **{"Upload-Checksum": checksum})
    assert response.status_code == 204, response.content
    assert stored_file_bytes() == b"12345"


def test_a_preflight_allows_every_header_a_tus_client_sends_for_a_day(client, settings, db):
    """A browser's preflight: every request header of a tus client allowed, the answer
    cached a day (not one preflight per PATCH); an OPTIONS that is no preflight (tus's
    discovery) gets the CORS answer without the preflight's headers."""
    settings.PORTAL_CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    origin = {"Origin": "https://app.example.com"}
    preflight = client.options(TUS, headers={**origin, "Access-Control-Request-Method": "PATCH"})
    allowed = set(preflight["Access-Control-Allow-Headers"].lower().split(", "))
    sent = {"tus-resumable", "upload-offset", "upload-length", "upload-metadata"}
    sent |= {"upload-checksum", "authorization", "x-http-method-override", "content-type"}
    assert sent <= allowed
    assert preflight["Access-Control-Max-Age"] == "86400"
    plain = client.options(TUS, headers=origin)
    assert plain["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Access-Control-Allow-Methods" not in plain and "Access-Control-Max-Age" not in plain


def test_options_names_the_largest_file(client, settings, db):
    settings.PORTAL_MAX_FILE_SIZE = 123_456_789
    assert client.options(TUS)["Tus-Max-Size"] == "123456789"


def test_location_is_an_absolute_url(tus):
    response = tus.create(5)
    assert response["Location"].startswith("http://testserver/api/v1/tus/")
    assert response["Location"].removeprefix("http://testserver/api/v1/tus/") == str(
        UploadSession.objects.get().pk
    )


def test_a_creation_whose_body_is_refused_answers_its_error_with_the_location(tus):
    data = b"0123456789abcde"
    wrong = {"Upload-Checksum": f"sha256 {b64(hashlib.sha256(b'other').digest())}"}
    response = tus.create(len(data), body=data[:12], **wrong)
    assert (response.status_code, error_code(response)) == (460, "checksum_mismatch")
    path = response["Location"].removeprefix("http://testserver")
    assert path == f"{TUS}{UploadSession.objects.get().pk}"
    assert tus.offset(path) == 0
    assert tus.patch(path, 0, data).status_code == 204
    assert stored_file_bytes() == data


def test_a_patch_checks_its_content_type_before_its_offset(tus):
    path = tus.start(5)
    response = tus.client.generic(
        "PATCH", path, b"12345", content_type="text/plain", headers=tus.headers
    )
    assert (response.status_code, error_code(response)) == (415, "unsupported_media_type")


def test_a_method_override_is_read_in_any_case(tus):
    path = tus.start(5)
    response = tus.client.post(
        path,
        data=b"12345",
        content_type="application/offset+octet-stream",
        headers={**tus.headers, "Upload-Offset": "0", "X-HTTP-Method-Override": "patch"},
    )
    assert response.status_code == 204, response.content
    assert stored_file_bytes() == b"12345"


def test_cors_names_every_method_and_header_of_tus(client, settings, db):
    settings.PORTAL_CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    headers = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "DELETE"}
    response = client.options(TUS, headers=headers)

    def names(header):
        return set(response[header].split(", "))

    assert names("Access-Control-Allow-Methods") == {"POST", "HEAD", "PATCH", "DELETE", "OPTIONS"}
    assert names("Access-Control-Expose-Headers") == {
        "Tus-Resumable",
        "Tus-Version",
        "Tus-Extension",
        "Tus-Max-Size",
        "Tus-Checksum-Algorithm",
        "Upload-Offset",
        "Upload-Length",
        "Upload-Expires",
        "Upload-Metadata",
        "Location",
        "X-Request-ID",
    }
    assert names("Access-Control-Allow-Headers") == {
        "Authorization",
        "Content-Type",
        "Tus-Resumable",
        "Upload-Length",
        "Upload-Metadata",
        "Upload-Offset",
        "Upload-Checksum",
        "Upload-Defer-Length",
        "Upload-Concat",
        "X-HTTP-Method-Override",
        "X-Requested-With",
        "X-Request-ID",
    }


def test_the_collection_answers_without_its_slash_and_only_it(tus):
    bare = TUS.rstrip("/")
    response = tus.client.generic("POST", bare, headers={**tus.headers, "Upload-Length": "5"})
    assert (response.status_code, response["Tus-Resumable"]) == (201, "1.0.0")
    assert tus.client.options(bare)["Tus-Resumable"] == "1.0.0"
    assert "Tus-Resumable" not in tus.client.options(bare + "x/")


def test_a_patch_without_content_length_is_an_empty_body(tus):
    path = tus.start(5)
    response = tus.client.generic(
        "PATCH",
        path,
        content_type="application/offset+octet-stream",
        headers={**tus.headers, "Upload-Offset": "0"},
        CONTENT_LENGTH="",
        CONTENT_TYPE="application/offset+octet-stream",
    )
    assert (response.status_code, response["Upload-Offset"]) == (204, "0")
