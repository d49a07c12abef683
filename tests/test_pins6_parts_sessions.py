"""Pins for the upload API's sessions, sixth round (issue #31): what a reused key names, a
refused abort that touches no file, the received parts in order whatever order they came."""

from datetime import UTC, datetime

import pytest
import time_machine

from portal.models import IngestFile, UploadSession
from tests.api_helpers import Api, error_code, make_token


@pytest.fixture
def api(client, user, portal_storage):
    return Api(client, make_token(user))


def test_a_reused_key_names_the_fields_that_differ_in_alphabetical_order(api):
    """The fields are named sorted (chunk_size_bytes before filename), not in the order
    they are compared: the message is stable whatever the code's order."""
    first = dict(filename="a.bin", size_bytes=10, chunk_size_bytes=5, idempotency_key="k")
    assert api.create(**first).status_code == 201
    reused = api.create(**{**first, "filename": "b.bin", "chunk_size_bytes": 2})
    assert reused.status_code == 409
    assert reused.json()["error"] == {
        "code": "idempotency_key_reused",
        "message": "idempotency_key was already used for another request (its "
        "chunk_size_bytes, filename differed: chunk_size_bytes=5, filename='a.bin')",
    }
    assert UploadSession.objects.count() == 1


def test_a_refused_abort_of_a_complete_session_leaves_its_file_stored(api):
    """An abort that ends no session fails no file: the stored file of a complete session
    stays ``stored`` (a 409 that also failed the file would lose a finished upload)."""
    session = api.start(b"abc", 3)
    api.upload(session["id"], b"abc", 3)
    assert api.finalize(session["id"]).status_code == 200

    response = api.abort(session["id"])

    assert (response.status_code, error_code(response)) == (409, "session_complete")
    row = UploadSession.objects.select_related("file").get()
    assert (row.status, row.file.status) == ("complete", IngestFile.Status.STORED)
    assert row.failure_reason == ""


def test_a_refused_abort_of_a_finalizing_session_leaves_every_file_as_it_was(api):
    """A 409 abort of a finalizing session changes no file, its own nor another session's."""
    other = api.start(b"xyz", 3)
    session = api.start(b"abc", 3)
    api.upload(session["id"], b"abc", 3)
    UploadSession.objects.filter(pk=session["id"]).update(status="finalizing")

    response = api.abort(session["id"])

    assert (response.status_code, error_code(response)) == (409, "session_finalizing")
    assert set(IngestFile.objects.values_list("status", flat=True)) == {"uploading"}
    assert UploadSession.objects.get(pk=other["id"]).status == "init"


def test_received_parts_are_listed_in_order_whatever_order_they_came_in(api):
    """The status lists part numbers sorted into ranges even when the parts arrived from
    last to first (a client resuming reads the gaps from it)."""
    session = api.start(b"x" * 100, 10)
    for number in (10, 8, 7, 5, 3, 1, 2):
        assert api.put(session["id"], number, b"x" * 10).status_code == 201
    body = api.status(session["id"]).json()
    assert body["received_parts"] == "1-3,5,7-8,10"
    assert (body["completed_parts"], body["bytes_received"]) == (7, 70)


@pytest.mark.parametrize("content_type", ["text/ ", "text/   "])
def test_a_content_type_whose_subtype_is_only_blanks_is_400(api, content_type):
    """A subtype of blanks is no subtype: ``text/`` followed by spaces is refused like
    ``text/``, and no session is made."""
    response = api.create(filename="a", size_bytes=1, content_type=content_type)
    assert (response.status_code, error_code(response)) == (400, "invalid_content_type")
    assert not UploadSession.objects.exists()


def test_an_abort_stamps_the_session_and_its_file_with_its_time_and_nothing_else(api):
    """The abort's instant is the session's end and both rows' last change; another
    session of the same owner and its file keep theirs (only the aborted pair changes)."""
    with time_machine.travel("2030-01-01 10:00:00Z", tick=False):
        other = api.start(b"xyz", 3)["id"]
        session = api.start(b"abc", 3)["id"]
    aborted_at = datetime(2030, 1, 1, 10, 30, tzinfo=UTC)
    with time_machine.travel(aborted_at, tick=False):
        assert api.abort(session).status_code == 204

    row = UploadSession.objects.select_related("file").get(pk=session)
    assert (row.status, row.finished_at, row.updated_at) == ("aborted", aborted_at, aborted_at)
    assert (row.file.status, row.file.updated_at) == ("failed", aborted_at)
    kept = UploadSession.objects.select_related("file").get(pk=other)
    assert (kept.status, kept.finished_at, kept.file.status) == ("init", None, "uploading")
    assert kept.updated_at < aborted_at and kept.file.updated_at < aborted_at
