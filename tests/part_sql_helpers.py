"""Open sessions for the part path's SQL tests (``tests/test_part_sql.py`` and its pins):
``sessions``/``session``, the session under test beside another that no statement may
touch, and the rows read back through the ORM."""

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.models import UploadPart, UploadSession
from tests.api_helpers import Api, make_token
from tests.conftest import apply_storage

CHUNK = 256 * 1024


def open_session(api, parts):
    """An open session of four parts with ``parts`` recorded, and no saved hash."""
    data = bytes(4 * CHUNK)
    session_id = api.start(data, CHUNK)["id"]
    api.upload(session_id, data, CHUNK, order=parts)
    UploadSession.objects.filter(pk=session_id).update(hashed_parts=0, hash_state=None)
    return UploadSession.objects.get(pk=session_id)


@pytest.fixture
def sessions(client, user, settings, data_dir):
    """Two open sessions of four parts: the one under test with parts 1 and 3 recorded,
    and another with parts 1-3 recorded and a claim held, which no statement may touch."""
    apply_storage(settings, "local", data_dir)
    api = Api(client, make_token(user))
    other = open_session(api, [1, 2, 3])
    UploadSession.objects.filter(pk=other.pk).update(
        hash_claimed_until=timezone.now() + timedelta(hours=1)
    )
    other_before = (row(other.pk), parts_of(other.pk))
    yield open_session(api, [1, 3])
    assert (row(other.pk), parts_of(other.pk)) == other_before


@pytest.fixture
def session(sessions):
    return sessions


def row(session_pk):
    return UploadSession.objects.values().get(pk=session_pk)


def parts_of(session_pk):
    return list(UploadPart.objects.filter(session_id=session_pk).order_by("part_number").values())
