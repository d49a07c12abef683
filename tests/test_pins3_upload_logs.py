"""Pins for the upload API's log lines (issue #31, the upload area, third round): the
messages an operator reads next to the events (docs/logging.md shows "upload session
created" in both formats), with the fields that say which upload and part."""

import logging

import pytest

from portal.models import UploadSession
from tests.api_helpers import Api, make_token


@pytest.fixture
def api(client, user, portal_storage):
    return Api(client, make_token(user))


def records(caplog, name):
    return [record for record in caplog.records if getattr(record, "event", None) == name]


def test_a_created_session_and_a_stored_part_say_so_in_their_messages(api, caplog):
    caplog.set_level(logging.INFO, logger="portal")
    session = api.start(b"x" * 25, 10)["id"]
    assert api.put(session, 3, b"x" * 5).status_code == 201

    [created] = records(caplog, "session.created")
    [stored] = records(caplog, "part.received")
    row = UploadSession.objects.get()
    assert created.getMessage() == "upload session created"
    assert (created.session_id, created.file_id) == (session, str(row.file_id))
    assert stored.getMessage() == "part stored"
    assert (stored.session_id, stored.part_number, stored.size_bytes) == (session, 3, 5)
