"""Rows the admin tests share."""

from datetime import timedelta

from django.utils import timezone

from portal.models import IngestFile, UploadPart, UploadSession


def make_session(owner, parts):
    file = IngestFile.objects.create(original_filename="big.bin", size_bytes=30, uploaded_by=owner)
    session = UploadSession.objects.create(
        file=file,
        owner=owner,
        status=UploadSession.Status.IN_PROGRESS,
        chunk_size_bytes=10,
        total_size_bytes=30,
        total_parts=3,
        completed_parts=len(parts),
        expires_at=timezone.now() + timedelta(hours=1),
    )
    for number in parts:
        UploadPart.objects.create(
            session=session,
            part_number=number,
            size_bytes=10,
            sha256=f"{number:02d}" + "ab" * 31,
            temp_key=f"temp/{session.pk}/part-{number:05d}",
        )
    return session
