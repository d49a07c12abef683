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


def test_the_models_name_themselves_for_the_admin(user):
    from portal.models import ApiToken, JobRun, TusUpload
    from portal.services.tokens import create_token

    session = make_session(user)
    assert str(session) == f"session {session.id} (init)"
    assert str(session.file) == "a.bin (uploading)"
    part = UploadPart.objects.create(session=session, part_number=2, size_bytes=5, sha256="0")
    assert str(part) == f"part 2 of {session.id}"
    event = OutboxEvent(event_type=OutboxEvent.FILE_UPLOADED, next_attempt_at=timezone.now())
    assert str(event) == f"file.uploaded {event.id} (pending)"
    token = create_token(user)[0]
    assert str(token) == f"{token.key_prefix}… (alice, unnamed)"
    token.name = "laptop"
    assert str(token) == f"{token.key_prefix}… (alice, laptop)"
    assert ApiToken.objects.get().key_prefix == token.key_prefix
    run = JobRun(job="portal_cleanup", started_at=timezone.now().replace(2030, 1, 2, 3, 4, 5))
    assert str(run) == "portal_cleanup at 2030-01-02 03:04:05 (running)"
    assert str(TusUpload(session=session)) == f"tus upload {session.id}"
