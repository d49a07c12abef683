"""tus 1.0 pinned at its corners (issue #31, catalog ``tests/mutant_area_tus.py``): header
values at their limits (metadata, integers, checksums), parts with a gap, HEAD and DELETE
of finished uploads, the file's sha256 where hash states cannot be saved, tails gone or
longer in storage, refused PATCHes leaving nothing behind, a storage outage's log line.
The view's corners (CORS lists, Location, URLs) are in ``tests/test_tus_edges.py``."""

import hashlib
import io
import logging
import os
import shutil

import pytest

from portal import storage
from portal.models import IngestFile, TusUpload, UploadPart, UploadSession
from portal.storage import sha256state
from tests import objects
from tests.api_helpers import Api, error_code, make_token, sha256
from tests.conftest import apply_storage
from tests.tus_helpers import (
    TUS,
    Breaking,
    b64,
    metadata,
    patch_breaking,
    stored_file_bytes,
    upload_id,
)


def create(tus, **headers):
    return tus.client.generic("POST", TUS, headers={**tus.headers, **headers})


# --- Upload-Metadata


def test_a_metadata_header_of_blanks_is_none(tus):
    path = tus.start(5, **{"Upload-Metadata": "   "})
    file = IngestFile.objects.get()
    assert (file.original_filename, file.content_type) == ("upload", "application/octet-stream")
    assert "Upload-Metadata" not in tus.head(path)


def test_metadata_of_exactly_the_most_characters_is_taken_one_more_is_400(tus):
    value = " " + b64(b"abc")  # 4 characters
    longest = "k" * (8192 - len(value)) + value
    assert len(longest) == 8192
    path = tus.start(5, **{"Upload-Metadata": longest})
    assert tus.head(path)["Upload-Metadata"] == longest
    response = tus.create(5, **{"Upload-Metadata": "k" + longest})
    assert (response.status_code, error_code(response)) == (400, "invalid_upload_metadata")


def test_a_metadata_key_without_a_value_is_taken(tus):
    tus.start(5, **{"Upload-Metadata": metadata(filename="a.txt", is_confidential=None)})
    tus.start(5, **{"Upload-Metadata": "filename"})  # no value: no name
    names = IngestFile.objects.order_by("created_at").values_list("original_filename", flat=True)
    assert list(names) == ["a.txt", "upload"]


def test_the_tus_names_win_over_uppys_when_a_client_sends_both(tus):
    """Uppy sends ``name`` and ``type`` beside tus-js-client's ``filename`` and
    ``filetype``; when both kinds disagree, the tus ones (listed first) are the file's."""
    both = metadata(filename="a.csv", name="b.txt", filetype="text/csv", type="text/plain")
    tus.start(5, **{"Upload-Metadata": both})
    [row] = IngestFile.objects.values_list("original_filename", "content_type")
    assert row == ("a.csv", "text/csv")


@pytest.mark.parametrize(
    "header",
    [
        "filename YWJj!",  # base64 of "abc" with a character that is none
        "filename YW Jj",
        "filename \u00e9",  # not ASCII
        "filename " + b64(b"x") + ",,",
    ],
)
def test_metadata_that_is_not_strict_base64_is_400(tus, header):
    response = tus.create(5, **{"Upload-Metadata": header})
    assert (response.status_code, error_code(response)) == (400, "invalid_upload_metadata")
    assert not UploadSession.objects.exists()


def test_tus_filename_wins_over_uppys_name(tus):
    tus.start(5, **{"Upload-Metadata": metadata(name="uppy.png", filename="tus.png")})
    assert IngestFile.objects.get().original_filename == "tus.png"


def test_a_sha256_of_more_than_64_hex_digits_is_400(tus):
    response = tus.create(5, **{"Upload-Metadata": metadata(sha256="a" * 65)})
    assert (response.status_code, error_code(response)) == (400, "invalid_upload_metadata")
    response = tus.create(5, **{"Upload-Metadata": metadata(sha256="g" * 64)})
    assert (response.status_code, error_code(response)) == (400, "invalid_upload_metadata")
    assert not UploadSession.objects.exists()


# --- integer headers, checksums, deferred length


def test_empty_integer_headers_are_missing(tus):
    response = create(tus, **{"Upload-Length": ""})
    assert (response.status_code, error_code(response)) == (400, "upload_length_required")
    path = tus.start(5)
    response = tus.patch(path, "", b"12345")
    assert (response.status_code, error_code(response)) == (400, "upload_offset_required")


def test_integer_headers_have_at_most_19_digits(tus):
    response = create(tus, **{"Upload-Length": "1" * 20})
    assert (response.status_code, error_code(response)) == (400, "invalid_upload_length")
    response = create(tus, **{"Upload-Length": "1" + "0" * 18})
    assert (response.status_code, error_code(response)) == (413, "file_too_large")
    path = tus.start(5)
    response = tus.patch(path, "1" * 20, b"12345")
    assert (response.status_code, error_code(response)) == (400, "invalid_upload_offset")
    response = tus.patch(path, "1" * 19, b"12345")
    assert (response.status_code, error_code(response)) == (409, "offset_mismatch")
    assert response.json()["error"]["offset"] == 0


def test_an_empty_upload_checksum_names_no_algorithm(tus):
    path = tus.start(5)
    response = tus.patch(path, 0, b"12345", **{"Upload-Checksum": ""})
    assert (response.status_code, error_code(response)) == (400, "checksum_algorithm_unsupported")
    assert tus.offset(path) == 0


def test_a_deferred_length_is_400_even_with_a_length(tus):
    response = create(tus, **{"Upload-Length": "5", "Upload-Defer-Length": "1"})
    assert (response.status_code, error_code(response)) == (400, "defer_length_unsupported")
    assert not UploadSession.objects.exists()


# --- the offset, HEAD and DELETE


def test_the_offset_counts_the_parts_up_to_the_first_missing_one(tus, client, user):
    data = bytes(range(40))
    path = tus.start(len(data))
    api = Api(client, make_token(user))
    assert api.put(upload_id(path), 2, data[10:20]).status_code == 201
    assert tus.offset(path) == 0
    assert tus.patch(path, 0, data[:10]).status_code == 204
    assert tus.offset(path) == 20
    assert api.put(upload_id(path), 4, data[30:]).status_code == 201
    assert tus.offset(path) == 20
    assert tus.patch(path, 20, data[20:30]).status_code == 204
    # (the PATCH answers 30, the end of its own bytes; HEAD counts the JSON API's part 4)
    assert tus.offset(path) == 40
    assert stored_file_bytes() == data


def test_head_and_delete_of_a_complete_upload(tus):
    path = tus.start(12)
    assert tus.patch(path, 0, b"x" * 12).status_code == 204
    head = tus.head(path)
    assert (head.status_code, head["Upload-Offset"], head["Upload-Length"]) == (200, "12", "12")
    assert "Upload-Expires" not in head
    response = tus.delete(path)
    assert (response.status_code, error_code(response)) == (409, "session_complete")
    assert tus.head(path).status_code == 200


def test_delete_of_an_upload_without_a_tail_and_with_one(tus):
    path = tus.start(20)
    assert tus.delete(path).status_code == 204
    assert tus.head(path).status_code == 410
    path = tus.start(20)
    assert tus.patch(path, 0, b"x" * 13).status_code == 204
    tus_row = TusUpload.objects.get(session_id=upload_id(path))
    assert tus.delete(path).status_code == 204
    tus_row.refresh_from_db()
    assert (tus_row.tail_key, tus_row.tail_bytes, tus_row.tail_part) == ("", 0, 0)
    assert UploadSession.objects.get(pk=upload_id(path)).status == "aborted"


# --- PATCH


def test_an_empty_patch_needs_no_room(tus, settings):
    path = tus.start(5)
    settings.PORTAL_FREE_SPACE_RESERVE_BYTES = 2**60
    response = tus.patch(path, 0, b"")
    assert (response.status_code, response["Upload-Offset"]) == (204, "0")
    if storage.free_bytes("temp") is not None:
        response = tus.patch(path, 0, b"12345")
        assert (response.status_code, error_code(response)) == (507, "insufficient_storage")


@pytest.mark.parametrize("ends", [True, False])
def test_a_file_sha256_without_saved_hash_states_is_read_back_for_the_last_patch(
    tus, monkeypatch, ends
):
    """Where OpenSSL's hash states cannot be saved, the last PATCH reads the parts and the
    tail back for the file's sha256."""
    monkeypatch.setattr(sha256state, "available", lambda: False)
    data = bytes(range(37))
    expected = sha256(data) if ends else sha256(b"other")
    path = tus.start(len(data), **{"Upload-Metadata": metadata(sha256=expected)})
    for start, end in ((0, 4), (4, 24), (24, 33)):  # a tail, parts with a tail, ...
        assert tus.patch(path, start, data[start:end]).status_code == 204
    response = tus.patch(path, 33, data[33:])
    if ends:
        assert response.status_code == 204, response.content
        assert stored_file_bytes() == data
    else:
        assert (response.status_code, error_code(response)) == (460, "sha256_mismatch")
        assert tus.offset(path) == 33  # part 4 not kept: its first bytes, the tail, are


def test_a_file_sha256_read_back_leaves_out_parts_past_a_missing_one(tus, client, user):
    data = bytes(range(40))
    path = tus.start(len(data), **{"Upload-Metadata": metadata(sha256=sha256(data))})
    assert tus.patch(path, 0, data[:10]).status_code == 204
    if sha256state.available():
        assert TusUpload.objects.get().hashed_bytes == 10
    api = Api(client, make_token(user))
    assert api.put(upload_id(path), 3, data[20:30]).status_code == 201
    TusUpload.objects.update(hash_state=None, hashed_bytes=0)  # no state to resume
    assert tus.patch(path, 10, data[10:20]).status_code == 204
    assert tus.offset(path) == 30
    response = tus.patch(path, 30, data[30:])
    assert response.status_code == 204, response.content
    assert stored_file_bytes() == data


@pytest.mark.parametrize("checksum", [False, True])  # with one, the parts are recorded at once
def test_a_file_sha256_mismatch_in_one_patch_of_many_parts_is_460(tus, checksum):
    data = bytes(range(25))
    path = tus.start(len(data), **{"Upload-Metadata": metadata(sha256=sha256(b"other"))})
    headers = {"Upload-Checksum": f"sha1 {b64(hashlib.sha1(data).digest())}"} if checksum else {}
    response = tus.patch(path, 0, data, **headers)
    assert (response.status_code, error_code(response)) == (460, "sha256_mismatch")
    assert tus.offset(path) == (0 if checksum else 20)
    assert not IngestFile.objects.filter(status="stored").exists()


def test_a_body_with_a_checksum_that_breaks_off_is_400_and_keeps_nothing(tus):
    data = bytes(range(30))
    path = tus.start(len(data))
    checksum = {"Upload-Checksum": f"sha1 {b64(hashlib.sha1(data).digest())}"}
    response = tus.client.generic(
        "PATCH",
        path,
        content_type="application/offset+octet-stream",
        headers={**tus.headers, "Upload-Offset": "0", **checksum},
        CONTENT_LENGTH="30",
        CONTENT_TYPE="application/offset+octet-stream",
        **{"wsgi.input": Breaking(data[:23], ConnectionResetError())},
    )
    assert (response.status_code, error_code(response)) == (400, "incomplete_body")
    assert "(UnreadablePostError)" in response.json()["error"]["message"]  # Django's OSError
    assert tus.offset(path) == 0 and not UploadPart.objects.exists()
    assert objects.own_temp_keys() == []


def test_a_body_that_breaks_off_says_why(tus):
    data = bytes(range(30))
    path = tus.start(len(data))
    response = patch_breaking(tus, path, 0, Breaking(data[:13], TimeoutError("slow")), 30)
    assert (response.status_code, error_code(response)) == (400, "incomplete_body")
    assert "(UnreadablePostError)" in response.json()["error"]["message"]
    assert response["Upload-Offset"] == "13"


@pytest.mark.parametrize("error", [None, ConnectionResetError()])
def test_a_body_that_breaks_off_at_a_part_boundary_leaves_no_tail(tus, error):
    """The body ends where part 2 begins, its announced bytes ending inside part 2: no
    bytes of part 2 arrived, so there is no tail (no empty temp object either)."""
    data = bytes(range(30))
    path = tus.start(len(data))
    response = patch_breaking(tus, path, 0, Breaking(data[:10], error), 15)
    assert (response.status_code, response["Upload-Offset"]) == (400, "10")
    tail = TusUpload.objects.get()
    assert (tail.tail_key, tail.tail_part, tail.tail_bytes) == ("", 0, 0)
    assert set(objects.own_temp_keys()) <= {p.temp_key for p in UploadPart.objects.all()}
    assert tus.patch(path, 10, data[10:]).status_code == 204
    assert stored_file_bytes() == data


def test_a_tail_continued_is_removed_from_temp_storage(tus):
    data = bytes(range(30))
    path = tus.start(len(data))
    assert tus.patch(path, 0, data[:4]).status_code == 204
    first = TusUpload.objects.get().tail_key
    assert first and objects.temp_exists(first)
    assert tus.patch(path, 4, data[4:15]).status_code == 204
    second = TusUpload.objects.get().tail_key
    assert second != first and not objects.temp_exists(first)
    assert objects.temp_exists(second)


def test_a_refused_patch_leaves_no_object_and_no_block_behind(tus, settings):
    settings.PORTAL_CHUNK_SIZE = 64 * 1024  # whole disk blocks: a range given back frees them
    data = os.urandom(2 * settings.PORTAL_CHUNK_SIZE + 9)
    path = tus.start(len(data))
    assert tus.patch(path, 0, data[:4]).status_code == 204
    before = (objects.own_temp_keys(), objects.assembly_blocks())
    wrong = {"Upload-Checksum": f"md5 {b64(hashlib.md5(b'other').digest())}"}
    response = tus.patch(path, 4, data[4:-3], **wrong)  # parts 1 and 2, a tail of 6
    assert (response.status_code, error_code(response)) == (460, "checksum_mismatch")
    assert (objects.own_temp_keys(), objects.assembly_blocks()) == before
    assert tus.patch(path, 4, data[4:]).status_code == 204
    assert stored_file_bytes() == data


def test_a_tail_gone_from_storage_is_409_and_the_upload_resumes_at_its_part(tus):
    data = bytes(range(25))
    path = tus.start(len(data))
    assert tus.patch(path, 0, data[:14]).status_code == 204
    storage.delete_temp([TusUpload.objects.get().tail_key])
    response = tus.patch(path, 14, data[14:])
    assert (response.status_code, error_code(response)) == (409, "offset_mismatch")
    assert tus.offset(path) == 10
    assert TusUpload.objects.get().tail_key == ""
    assert tus.patch(path, 10, data[10:]).status_code == 204
    assert stored_file_bytes() == data


def test_a_tail_longer_in_storage_than_recorded_gives_only_its_bytes(tus):
    data = bytes(range(25))
    path = tus.start(len(data))
    assert tus.patch(path, 0, data[:14]).status_code == 204
    tail = TusUpload.objects.get().tail_key
    storage.delete_temp([tail])
    storage.temp_storage().save(tail, io.BytesIO(data[10:14] + b"junk"))
    assert tus.patch(path, 14, data[14:]).status_code == 204
    assert stored_file_bytes() == data


def test_a_storage_outage_during_a_patch_is_logged_with_the_upload(tus, settings, data_dir, caplog):
    apply_storage(settings, "local", data_dir)
    path = tus.start(25)
    shutil.move(data_dir / "temp", data_dir / "temp.away")
    (data_dir / "temp").write_text("not a directory")
    with caplog.at_level(logging.WARNING):
        response = tus.patch(path, 0, b"x" * 25)
    (data_dir / "temp").unlink()
    shutil.move(data_dir / "temp.away", data_dir / "temp")
    assert (response.status_code, error_code(response)) == (503, "storage_unavailable")
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "storage.unavailable"]
    assert record.session_id == upload_id(path)
