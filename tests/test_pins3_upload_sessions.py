"""Pins for sessions (issue #31, the upload area, third round): an abort's log record and
an expiry extended by tus for its own session only."""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from portal.models import UploadSession
from tests.api_helpers import Api, make_token
from tests.tus_helpers import Tus


@pytest.fixture
def api(client, user, portal_storage):
    return Api(client, make_token(user))


def test_an_abort_is_logged_with_its_session_and_file(api, caplog):
    caplog.set_level(logging.INFO, logger="portal")
    session = api.start(b"x" * 25, 10)["id"]

    assert api.abort(session).status_code == 204

    [record] = [r for r in caplog.records if getattr(r, "event", None) == "session.aborted"]
    row = UploadSession.objects.get()
    assert (record.session_id, record.file_id) == (session, str(row.file_id))


def test_a_tus_patch_of_a_tail_only_extends_its_own_uploads_expiry(client, user, api, settings):
    """A PATCH that records no whole part (only a tail) slides its upload's expiry itself;
    another open session of the owner keeps its own."""
    settings.PORTAL_CHUNK_SIZE = 10
    other = api.start(b"x" * 25, 10)["id"]
    soon = timezone.now() + timedelta(minutes=5)
    UploadSession.objects.filter(pk=other).update(expires_at=soon)
    tus = Tus(client, make_token(user))
    path = tus.start(25)

    assert tus.patch(path, 0, b"abcd").status_code == 204

    assert UploadSession.objects.get(pk=other).expires_at == soon
