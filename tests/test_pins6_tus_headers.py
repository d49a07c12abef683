"""tus 1.0 headers pinned where careless slips survived (weak-pin review 6): metadata pairs
after ", ", padded values, keys with a tab; CORS for an origin in capitals and Vary for any
origin; the HEAD-only Cache-Control; no Upload-Offset on a creation without a body;
Transfer-Encoding in capitals; an Upload-Checksum padded with blanks."""

import base64
import hashlib

from portal.models import IngestFile
from tests.tus_helpers import TUS, metadata, stored_file_bytes


def test_metadata_pairs_separated_by_comma_and_space_are_all_read(tus):
    """Clients that join pairs with ", " must get their filename and type, not a 400."""
    sent = metadata(filename="report.csv", filetype="text/csv", colour="red")
    spaced = sent.replace(",", ", ")
    assert ", " in spaced
    response = tus.create(5, **{"Upload-Metadata": spaced})
    assert response.status_code == 201, response.content
    file = IngestFile.objects.get()
    assert (file.original_filename, file.content_type) == ("report.csv", "text/csv")


def test_an_allowed_origin_sent_in_capitals_gets_cors(client, settings, db):
    """Origins compare without case (a host name has none), so the browser may read the answer."""
    settings.PORTAL_CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    response = client.options(TUS, headers={"Origin": "HTTPS://App.Example.COM"})
    assert response["Access-Control-Allow-Origin"] == "HTTPS://App.Example.COM"
    assert "Origin" in response["Vary"]


def test_an_answer_to_a_refused_origin_still_varies_on_origin(client, settings, db):
    """A cache must not serve a refused origin's CORS-less answer to an allowed origin."""
    settings.PORTAL_CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    response = client.options(TUS, headers={"Origin": "https://evil.example.net"})
    assert response.status_code == 204
    assert "Access-Control-Allow-Origin" not in response
    assert "Origin" in response["Vary"]
    plain = client.options(TUS)
    assert "Origin" in plain["Vary"]


def test_only_head_answers_are_marked_no_store(tus):
    """HEAD's offset must never be cached; the other answers keep their own caching."""
    path = tus.start(20)
    assert tus.head(path)["Cache-Control"] == "no-store"
    patched = tus.patch(path, 0, b"z" * 4)
    assert patched.status_code == 204
    assert patched.get("Cache-Control") != "no-store"
    options = tus.client.options(TUS)
    assert options.get("Cache-Control") != "no-store"


def test_a_transfer_encoding_of_gzip_then_chunked_in_capitals_is_411(tus):
    """Header values are case-insensitive: a "Chunked" body has no length to check."""
    path = tus.start(5)
    response = tus.patch(path, 0, b"12345", **{"Transfer-Encoding": "gzip, Chunked"})
    assert response.status_code == 411
    assert response.json()["error"]["code"] == "length_required"
    assert tus.offset(path) == 0


def test_a_metadata_value_after_two_spaces_is_read_but_one_with_a_space_inside_is_400(tus):
    """Blanks around a value are padding; a blank inside one makes the pair unreadable."""
    padded = metadata(filename="a.txt").replace(" ", "  ")
    assert tus.create(5, **{"Upload-Metadata": padded}).status_code == 201
    assert IngestFile.objects.get().original_filename == "a.txt"
    inside = "filename YS50 eHQ="
    response = tus.create(5, **{"Upload-Metadata": inside})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_upload_metadata"


def test_a_metadata_key_with_a_tab_inside_is_400(tus):
    """Keys hold no whitespace at all: a tab is not a separator the server would guess at."""
    response = tus.create(5, **{"Upload-Metadata": "file\tname YS50eHQ="})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_upload_metadata"
    assert not IngestFile.objects.exists()


def test_a_creation_without_a_body_sends_no_patch_answer(tus):
    """Only creation-with-upload answers an Upload-Offset; a plain creation stores nothing."""
    response = tus.create(5)
    assert response.status_code == 201
    assert "Upload-Offset" not in response
    assert response["Location"].startswith("http://testserver/api/v1/tus/")
    assert "GMT" in response["Upload-Expires"]


def test_an_upload_checksum_with_padding_blanks_is_read(tus):
    """Blanks around the algorithm and the digest are padding, as in Upload-Metadata (a
    server in front may keep them): the body is checked and kept."""
    path = tus.start(5)
    digest = base64.b64encode(hashlib.sha1(b"12345").digest()).decode()
    response = tus.patch(path, 0, b"12345", **{"Upload-Checksum": f" sha1  {digest} "})
    assert response.status_code == 204, response.content
    assert response["Upload-Offset"] == "5"
    assert stored_file_bytes() == b"12345"
