"""Pins for the part API, sixth round (issue #31): what a refused part leaves behind. The
first part of a session lies at offset 0 of its assembly file, so "no offset" must mean
None, not 0; and a part refused after its bytes were written leaves no object of its own."""

import io

import pytest

from portal.models import UploadPart, UploadSession
from tests import objects
from tests.api_helpers import BASE, Api, make_token, sha256


@pytest.fixture
def api(client, user, portal_storage):
    return Api(client, make_token(user))


def put_cut_short(api, session_id, number, declared, sent):
    """A PUT whose body ends after ``sent`` of its ``declared`` bytes."""
    return api.client.generic(
        "PUT",
        f"{BASE}/{session_id}/parts/{number}",
        data=b"",
        content_type="application/octet-stream",
        headers=api.headers,
        CONTENT_LENGTH=str(declared),
        **{"wsgi.input": io.BytesIO(sent)},
    )


def test_a_first_part_cut_short_gives_back_only_its_range(api):
    """Part 1 (offset 0) cut short after part 2 is in: only part 1's range is given up,
    the session's file and part 2's bytes in it stay, and the upload completes."""
    data = b"".join(bytes([n]) * 10 for n in range(1, 4))
    session = api.start(data, 10)["id"]
    assert api.put(session, 2, data[10:20]).status_code == 201

    refused = put_cut_short(api, session, 1, 10, data[:4])

    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "incomplete_part"
    [recorded] = UploadPart.objects.filter(session_id=session)
    assert (recorded.part_number, objects.part_bytes(recorded)) == (2, data[10:20])
    api.upload(session, data, 10, order=[1, 3])
    assert api.finalize(session).json()["file"]["sha256"] == sha256(data)


def test_a_part_cut_short_leaves_no_object_of_its_own(api):
    """The bytes of a refused part are not kept as an object no row names (on S3 every
    part is an object of its own): only the recorded part's object remains."""
    data = b"a" * 10 + b"b" * 10
    session = api.start(data, 10)["id"]
    assert api.put(session, 1, data[:10]).status_code == 201
    before = objects.own_temp_keys()

    refused = put_cut_short(api, session, 2, 10, b"bbb")

    assert refused.status_code == 400
    assert objects.own_temp_keys() == before
    assert UploadSession.objects.get(pk=session).completed_parts == 1


def test_a_replay_with_other_bytes_names_the_recorded_parts_sha256(api):
    """The 409 names the sha256 of the bytes already stored (not of the replay's), so the
    client can tell which copy the server holds; nothing recorded changes."""
    data = b"a" * 10 + b"b" * 10
    session = api.start(data, 10)["id"]
    api.upload(session, data, 10)

    response = api.put(session, 2, b"c" * 10)

    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "part_conflict",
        "message": f"part 2 was already stored with different bytes (sha256 {sha256(b'b' * 10)})",
    }
    recorded = UploadPart.objects.get(session_id=session, part_number=2)
    assert (recorded.sha256, objects.part_bytes(recorded)) == (sha256(b"b" * 10), b"b" * 10)


def test_a_part_without_any_content_length_is_411_naming_the_size_to_send(api):
    """No Content-Length at all (a chunked body) is refused before a byte is read, with the
    length this part must declare; nothing is recorded."""
    session = api.start(b"x" * 25, 10)["id"]

    response = api.put(session, 3, b"x" * 5, CONTENT_LENGTH=None)

    assert response.status_code == 411
    assert response.json()["error"] == {
        "code": "length_required",
        "message": "send Content-Length: 5 (chunked bodies are not accepted)",
    }
    assert not UploadPart.objects.exists()
