"""The part statements of ``portal.services.part_sql`` on values the first pins left
equal: a part's offset in its session's file (local in-place storage), an ``init``
session counted, and no session at all (SQLite, and PostgreSQL with DATABASE_URL)."""

import uuid
from datetime import timedelta

from django.utils import timezone

from portal.models import UploadPart, UploadSession
from portal.services import part_sql
from portal.storage import StoredObject
from tests.part_sql_helpers import CHUNK, session, sessions  # noqa: F401  (fixtures)


def test_a_parts_offset_in_the_file_is_recorded_and_read_back(session):  # noqa: F811
    """On local disk a part lives at an offset of its session's file: ``insert_part``
    writes it and the hash catch-up reads it back, or it would hash the wrong bytes."""
    offset = 3 * CHUNK + 17
    part = StoredObject(key="sessions/f", size=CHUNK, sha256="e" * 64, md5="", offset=offset)
    assert part_sql.insert_part(session.pk, 4, part, timezone.now()) is True

    assert UploadPart.objects.get(session=session, part_number=4).temp_offset == offset
    UploadSession.objects.filter(pk=session.pk).update(hashed_parts=3)
    _, _, waiting = part_sql.waiting_parts(session.pk, 10, timezone.now())
    assert waiting == [part_sql.WaitingPart(4, CHUNK, "e" * 64, "sessions/f", offset)]


def test_an_init_session_is_counted_and_moves_to_in_progress(session):  # noqa: F811
    """``init`` is open: its first part is counted, and the session is in progress."""
    UploadSession.objects.filter(pk=session.pk).update(status="init")
    now = timezone.now().replace(microsecond=4321)

    assert part_sql.count_part(session.pk, 7, expires_at=now + timedelta(hours=1), now=now)
    assert UploadSession.objects.get(pk=session.pk).status == "in_progress"


def test_the_range_of_a_missing_session_is_no_status_and_no_part(db):
    """``(None, False)`` for no session: the tus HEAD/PATCH path answers 404, not 'recorded'."""
    assert part_sql.range_state(uuid.uuid4(), 1) == (None, False)
