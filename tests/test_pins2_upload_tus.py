"""Pins for tus (issue #31, the upload area): what a refused tus request says, and an
``Upload-Checksum`` that is not strict base64."""

import base64
import hashlib

import pytest
from django.utils.http import http_date

from portal.models import UploadPart, UploadSession
from tests.api_helpers import make_token
from tests.tus_helpers import CHUNK, TUS, Tus, metadata, stored_file_bytes


@pytest.mark.parametrize("version, got", [(None, "None"), ("2.0.0", "'2.0.0'")])
def test_another_tus_version_is_412_naming_the_one_spoken(client, user, version, got):
    headers = {"Authorization": f"Bearer {make_token(user)}", "Upload-Length": "5"}
    if version:
        headers["Tus-Resumable"] = version
    response = client.post(TUS, headers=headers)
    assert response.status_code == 412
    assert response.json() == {
        "error": {
            "code": "tus_version_unsupported",
            "message": f"send Tus-Resumable: 1.0.0 (got {got}); this server speaks only that",
        }
    }


@pytest.mark.parametrize("damage", ["!", " x", "=="])
def test_an_upload_checksum_that_is_not_strict_base64_is_400(tus, damage):
    """A digest with characters outside base64 (which a lax decoder would skip) is refused
    before a byte of the PATCH is kept."""
    body = b"0123456789abc"
    encoded = base64.b64encode(hashlib.sha1(body).digest()).decode()
    header = f"sha1 {encoded[:8]}{damage}{encoded[8:]}"
    path = tus.start(len(body))
    response = tus.patch(path, 0, body, **{"Upload-Checksum": header})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid_upload_checksum",
        "message": "Upload-Checksum must be 'sha1 <base64 of the 20-byte digest>'",
    }
    assert tus.offset(path) == 0
    assert not UploadPart.objects.exists()
    good = tus.patch(path, 0, body, **{"Upload-Checksum": f"sha1 {encoded}"})
    assert good.status_code == 204


def test_a_patch_of_another_content_type_is_415_naming_the_one_to_send(tus):
    path = tus.start(5)
    response = tus.patch(path, 0, b"12345", content_type="application/octet-stream")
    assert response.status_code == 415
    assert response.json()["error"] == {
        "code": "unsupported_media_type",
        "message": "send Content-Type: application/offset+octet-stream",
    }
    assert tus.offset(path) == 0


def test_a_chunked_patch_is_411(tus):
    path = tus.start(5)
    response = tus.patch(path, 0, b"12345", **{"Transfer-Encoding": "chunked"})
    assert response.status_code == 411
    assert response.json()["error"] == {
        "code": "length_required",
        "message": "send Content-Length (chunked bodies are not accepted)",
    }


def test_a_creation_with_upload_answers_201_with_its_offset_location_and_expiry(tus):
    response = tus.create(25, body=b"x" * 13)
    assert response.status_code == 201, response.content
    session = UploadSession.objects.get()
    assert response["Location"] == f"http://testserver{TUS}{session.pk}"
    assert response["Upload-Offset"] == "13"
    assert response["Upload-Expires"] == http_date(session.expires_at.timestamp())


def test_a_refused_first_patch_of_a_creation_still_names_the_upload(tus):
    """The upload exists: its error comes with the ``Location`` to resume at."""
    response = tus.create(5, body=b"12345", **{"Upload-Checksum": "sha1 AAAA"})
    assert response.status_code == 400
    session = UploadSession.objects.get()
    assert response["Location"] == f"http://testserver{TUS}{session.pk}"
    path = response["Location"].removeprefix("http://testserver")
    assert tus.offset(path) == 0
    assert tus.patch(path, 0, b"12345").status_code == 204
    assert stored_file_bytes() == b"12345"


def test_head_echoes_the_metadata_and_the_expiry_while_open(tus):
    sent = metadata(filename="a.txt", colour="blue")
    path = tus.start(5, **{"Upload-Metadata": sent})
    response = tus.head(path)
    assert response.status_code == 200
    assert (response["Upload-Offset"], response["Upload-Length"]) == ("0", "5")
    assert response["Upload-Metadata"] == sent
    assert response["Cache-Control"] == "no-store"
    session = UploadSession.objects.get()
    assert response["Upload-Expires"] == http_date(session.expires_at.timestamp())
    assert tus.patch(path, 0, b"12345").status_code == 204
    done = tus.head(path)
    assert done["Upload-Offset"] == "5" and "Upload-Expires" not in done


def test_a_preflight_from_an_allowed_origin_learns_every_header_a_tus_client_sends(
    client, settings
):
    settings.PORTAL_CORS_ALLOWED_ORIGINS = ["https://app.example"]
    response = client.options(
        TUS,
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "https://app.example"
    assert response["Access-Control-Allow-Methods"] == "POST, HEAD, PATCH, DELETE, OPTIONS"
    assert response["Access-Control-Allow-Headers"] == (
        "Authorization, Content-Type, Tus-Resumable, Upload-Length, Upload-Metadata, "
        "Upload-Offset, Upload-Checksum, Upload-Defer-Length, Upload-Concat, "
        "X-HTTP-Method-Override, X-Requested-With, X-Request-ID"
    )
    assert response["Access-Control-Max-Age"] == "86400"
    assert response["Access-Control-Expose-Headers"] == (
        "Tus-Resumable, Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm, "
        "Upload-Offset, Upload-Length, Upload-Expires, Upload-Metadata, Location, X-Request-ID"
    )


@pytest.mark.parametrize("path", ["/api/v1/tus/", "/api/v1/tus/not-an-upload/below"])
def test_every_answer_under_the_tus_endpoint_says_tus_resumable(client, db, path):
    """Also the answers no tus handler gives: a 401, a 405, a JSON 404 below the endpoint."""
    response = client.generic("PATCH", path, headers={"Tus-Resumable": "1.0.0"})
    assert response.status_code in (401, 404, 405)
    assert response["Tus-Resumable"] == "1.0.0"
    head = client.head(path, headers={"Tus-Resumable": "1.0.0"})
    assert head["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "header, message",
    [
        ("filename " + base64.b64encode(b"\xff\xfe").decode(), "'filename' is not UTF-8"),
        ("filename ab$c", "'filename' is not base64"),
    ],
)
def test_bad_upload_metadata_is_400_naming_the_key(tus, header, message):
    response = tus.create(5, **{"Upload-Metadata": header})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid_upload_metadata",
        "message": f"Upload-Metadata {message}",
    }
    assert not UploadSession.objects.exists()


def test_a_file_sha256_mismatch_names_both_digests(tus):
    data = b"0123456789abcde"
    claimed = hashlib.sha256(b"something else").hexdigest()
    path = tus.start(len(data), **{"Upload-Metadata": metadata(sha256=claimed)})
    response = tus.patch(path, 0, data)
    assert response.status_code == 460
    actual = hashlib.sha256(data).hexdigest()
    assert response.json()["error"] == {
        "code": "sha256_mismatch",
        "message": f"the file's sha256 is {actual}, its Upload-Metadata sha256 says {claimed}; "
        "the last part was not kept and nothing was stored",
    }


def test_a_patch_while_the_temp_root_is_missing_is_503_naming_what_failed(
    client, user, settings, data_dir
):
    from tests.conftest import apply_storage

    apply_storage(settings, "local", data_dir)
    settings.PORTAL_CHUNK_SIZE = CHUNK
    tus = Tus(client, make_token(user))
    path = tus.start(5)
    (data_dir / "temp").rmdir()
    response = tus.patch(path, 0, b"12345")
    assert response.status_code == 503
    assert response.json()["error"] == {
        "code": "storage_unavailable",
        "message": "storage is unavailable while storing a tus PATCH; nothing was lost, try "
        "again shortly",
    }
    assert not UploadPart.objects.exists()
