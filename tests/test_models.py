"""Model constraints hold in the database itself (SQLite and PostgreSQL)."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.models import IngestFile, OutboxEvent, UploadPart, UploadSession

pytestmark = pytest.mark.django_db


def make_session(owner, *, key=""):
    file = IngestFile.objects.create(original_filename="a.bin", size_bytes=10, uploaded_by=owner)
    return UploadSession.objects.create(
        file=file,
        owner=owner,
        chunk_size_bytes=5,
        total_size_bytes=10,
        total_parts=2,
        idempotency_key=key,
        expires_at=timezone.now() + timedelta(hours=1),
    )


def test_one_row_per_part_number(user):
    session = make_session(user)
    UploadPart.objects.create(session=session, part_number=1, size_bytes=5, sha256="a" * 64)
    with pytest.raises(IntegrityError), transaction.atomic():
        UploadPart.objects.create(session=session, part_number=1, size_bytes=5, sha256="b" * 64)


def test_idempotency_key_unique_per_owner_only_when_set(user, other_user):
    make_session(user, key="k1")
    make_session(other_user, key="k1")
    make_session(user)
    make_session(user)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_session(user, key="k1")


def test_outbox_key_unique_per_event_type(db):
    def event(event_type, key):
        return OutboxEvent.objects.create(
            event_type=event_type,
            aggregate_id="x",
            payload={},
            idempotency_key=key,
            next_attempt_at=timezone.now(),
        )

    event("file.uploaded", "f1")
    event("file.deleted", "f1")
    with pytest.raises(IntegrityError), transaction.atomic():
        event("file.uploaded", "f1")


def test_session_deletion_cascades_to_parts_and_file_keeps_owner(user):
    session = make_session(user)
    UploadPart.objects.create(session=session, part_number=1, size_bytes=5, sha256="a" * 64)
    session.file.delete()
    assert UploadSession.objects.count() == 0
    assert UploadPart.objects.count() == 0
