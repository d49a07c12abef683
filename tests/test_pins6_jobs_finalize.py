"""Pins for the finalize job, sixth round (issue #31): ``portal_finalize``'s run record and
report when an assembly is refused for room, and what an assembly writes once it completes."""

import os
from datetime import timedelta

from django.utils import timezone

from portal.models import JobRun, UploadSession
from portal.services import finalize
from portal.services.finalize import lease
from tests.api_helpers import Api, make_token
from tests.volumes import KIB, fill

Status = UploadSession.Status


def finalizing_with_dead_lease(api, data, chunk):
    session = api.start(data, chunk)
    api.upload(session["id"], data, chunk)
    assert lease.begin(session["id"])
    UploadSession.objects.filter(pk=session["id"]).update(
        assembly_lease_until=timezone.now() - timedelta(seconds=1)
    )
    return session["id"]


def test_a_run_with_an_assembly_refused_for_room_is_recorded_partial(client, user, volumes):
    """The run row and summary say ``partial`` (cron's heartbeat shows work left over), and
    the report's problem line names the storage outage, not an empty reason."""
    _, final = volumes
    api = Api(client, make_token(user))
    finalizing_with_dead_lease(api, os.urandom(200 * KIB), 100 * KIB)
    fill(final, 150 * KIB)

    report = finalize.run_finalize_job()

    run = JobRun.objects.get(job="portal_finalize")
    assert (run.outcome, report.summary["outcome"]) == ("partial", "partial")
    assert run.counts["errors"] == 1 and run.finished_at is not None
    assert report.problem.startswith("1 assembly(ies) failed on a storage outage")
    assert UploadSession.objects.get().status == Status.FINALIZING


def test_finalizes_turned_away_for_no_free_slot_keep_the_attempt_count(
    client, user, portal_storage, settings, monkeypatch
):
    """A process with no free assembly slot hands the session to ``portal_finalize``; that
    is no storage outage, so the count stays what ``begin`` made it: repeated finalizes on
    a busy process must not drive it down (below zero, the row's check refuses: a 500)."""
    import threading

    from portal.services.finalize import request

    settings.PORTAL_FINALIZE_WAIT_SECONDS = 0
    monkeypatch.setattr(request, "_assembly_slots", threading.BoundedSemaphore(0))
    api = Api(client, make_token(user))
    session = api.start(b"x" * 20, 10)
    api.upload(session["id"], b"x" * 20, 10)

    codes = [api.finalize(session["id"]).status_code for _ in range(3)]

    row = UploadSession.objects.get()
    assert codes == [202, 202, 202]
    assert (row.status, row.assembly_attempts) == (Status.FINALIZING, 1)
    assert row.assembly_lease_until <= timezone.now()
