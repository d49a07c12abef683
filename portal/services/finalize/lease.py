"""The lease of a ``finalizing`` session: renewed by its assembler, claimed by
``portal_finalize`` once it ran out (docs/design.md, "Periodic jobs")."""

import threading
from datetime import timedelta

from django.db import connection, connections, transaction
from django.db.models import F
from django.utils import timezone

from portal.models import UploadSession

# How long an assembler may go without renewing before it is taken for dead. It renews
# after every part (a 64 MiB part at 10 MB/s takes 7 s), so a live one never runs out.
LEASE_SECONDS = 60
Status = UploadSession.Status


def lease_until(now=None):
    return (now or timezone.now()) + timedelta(seconds=LEASE_SECONDS)


def begin(session_pk):
    """Move an open session to ``finalizing`` under a fresh lease; False if it was not open."""
    now = timezone.now()
    with transaction.atomic():
        return bool(
            UploadSession.objects.filter(
                pk=session_pk, status__in=UploadSession.OPEN_STATUSES
            ).update(
                status=Status.FINALIZING,
                assembly_lease_until=lease_until(now),
                assembly_attempts=F("assembly_attempts") + 1,
                assembled_bytes=0,
                updated_at=now,
            )
        )


def progress_recorder(session_pk):
    """Renew the lease with the progress, from any thread: boto3 reports it from a transfer
    thread, whose connection is closed after each call (else one idle backend per assembly)."""
    caller = threading.get_ident()

    def record(assembled_bytes):
        try:
            with transaction.atomic():
                UploadSession.objects.filter(pk=session_pk, status=Status.FINALIZING).update(
                    assembly_lease_until=lease_until(), assembled_bytes=assembled_bytes
                )
        finally:
            if threading.get_ident() != caller:
                connections.close_all()

    return record


def record_upload(session_pk, upload_id):
    """Remember the S3 multipart upload of this assembly (cleanup aborts the others)."""
    with transaction.atomic():
        UploadSession.objects.filter(pk=session_pk, status=Status.FINALIZING).update(
            assembly_upload_id=upload_id
        )


def claim_expired():
    """The pk of the ``finalizing`` session with the oldest expired lease, now claimed; or
    None. Rows another claimer holds are skipped, not waited for."""
    now = timezone.now()
    expired = (
        UploadSession.objects.filter(status=Status.FINALIZING, assembly_lease_until__lt=now)
        .order_by("assembly_lease_until")
        .values_list("pk", flat=True)
    )
    if connection.features.has_select_for_update_skip_locked:
        expired = expired.select_for_update(skip_locked=True)
    with transaction.atomic():
        pk = expired.first()
        if pk is None:
            return None
        claimed = UploadSession.objects.filter(
            pk=pk, status=Status.FINALIZING, assembly_lease_until__lt=now
        ).update(
            assembly_lease_until=lease_until(now),
            assembly_attempts=F("assembly_attempts") + 1,
        )
    return pk if claimed else None


def hand_back(session_pk, *, outage=False):
    """Make the session claimable by ``portal_finalize`` at once; after a storage ``outage``
    the attempt is not counted (an outage is retried as long as it lasts)."""
    fields = {"assembly_lease_until": timezone.now()}
    if outage:
        fields["assembly_attempts"] = F("assembly_attempts") - 1
    with transaction.atomic():
        UploadSession.objects.filter(pk=session_pk, status=Status.FINALIZING).update(**fields)
