"""tus 1.0 offsets pinned where careless slips survived (weak-pin review 6): a tail whose
part the JSON API then sent whole, HEAD and an empty PATCH of an upload being finalized,
the tail row's sha256."""

import hashlib

import pytest

from portal.models import TusUpload, UploadSession
from tests.api_helpers import Api, make_token
from tests.tus_helpers import upload_id


def test_a_tail_of_a_part_sent_whole_elsewhere_is_not_counted(tus, client, user):
    """The tail counts only for the part after the recorded ones, else HEAD overstates."""
    data = bytes(range(40))
    path = tus.start(len(data))
    assert tus.patch(path, 0, data[:14]).status_code == 204  # part 1 and 4 bytes of part 2
    assert tus.offset(path) == 14
    api = Api(client, make_token(user))
    assert api.put(upload_id(path), 2, data[10:20]).status_code == 201
    assert tus.offset(path) == 20
    assert tus.patch(path, 20, data[20:]).status_code == 204
    assert tus.offset(path) == 40


def test_head_of_an_upload_being_finalized_answers_its_length(tus):
    """A finalizing upload has all its bytes: HEAD says offset = length, not 409/410."""
    path = tus.start(25)
    assert tus.patch(path, 0, b"y" * 12).status_code == 204
    UploadSession.objects.update(status=UploadSession.Status.FINALIZING)
    head = tus.head(path)
    assert head.status_code == 200, head.content
    assert (head["Upload-Offset"], head["Upload-Length"]) == ("25", "25")
    assert "Upload-Expires" not in head


@pytest.mark.parametrize("status", ["finalizing", "complete"])
def test_an_empty_patch_at_the_end_of_a_closed_upload_only_confirms_the_offset(tus, status):
    """A retried last PATCH must not start another finalize of an upload already past it."""
    path = tus.start(25)
    assert tus.patch(path, 0, b"y" * 25).status_code == 204
    UploadSession.objects.update(status=status)
    before = UploadSession.objects.values("status", "updated_at").get()
    response = tus.patch(path, 25, b"")
    assert response.status_code == 204, response.content
    assert response["Upload-Offset"] == "25" and "Upload-Expires" not in response
    assert UploadSession.objects.values("status", "updated_at").get() == before


def test_the_tail_row_records_the_sha256_of_the_tail_bytes(tus):
    """The tail row's digest is the tail's own bytes' (the record of what storage holds)."""
    data = bytes(range(40))
    path = tus.start(len(data))
    assert tus.patch(path, 0, data[:14]).status_code == 204
    tail = TusUpload.objects.get()
    assert (tail.tail_part, tail.tail_bytes) == (2, 4)
    assert tail.tail_sha256 == hashlib.sha256(data[10:14]).hexdigest()
    assert tus.patch(path, 14, data[14:17]).status_code == 204
    tail.refresh_from_db()
    assert (tail.tail_part, tail.tail_bytes) == (2, 7)
    assert tail.tail_sha256 == hashlib.sha256(data[10:17]).hexdigest()
