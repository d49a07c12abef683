"""Finalize set-ups the jobs and finalize tests share."""

from datetime import timedelta

from django.utils import timezone

from portal.models import UploadSession
from portal.services.finalize import lease


def dead_assembly(api, data, chunk):
    """A session left finalizing by an assembler that died: its lease ran out."""
    session = api.start(data, chunk)
    api.upload(session["id"], data, chunk)
    lease.begin(session["id"])
    UploadSession.objects.filter(pk=session["id"]).update(
        assembly_lease_until=timezone.now() - timedelta(seconds=1)
    )
    return session["id"]
