"""Pins for finalize (issue #31, the upload area): a 507 keeps only its own session, the
``file.uploaded`` payload is the documented one, an S3 copy names its multipart upload on
the session, a session closed during its assembly is not reported stored, the job's
duration."""

import logging
import os
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from portal import storage
from portal.models import IngestFile, OutboxEvent, UploadSession
from portal.services import finalize
from portal.services.finalize import lease
from tests.api_helpers import Api, error_code, make_token, sha256
from tests.conftest import apply_storage
from tests.volumes import KIB, fill

Status = UploadSession.Status


@pytest.fixture
def api(client, user):
    return Api(client, make_token(user))


def stored_events(caplog):
    return [r for r in caplog.records if getattr(r, "event", None) == "file.stored"]


# --- 507: the refused session, and only it, is kept a full TTL


def test_a_finalize_refused_for_room_extends_only_its_own_session(
    api, client, other_user, volumes, settings
):
    _, final = volumes
    ttl = timedelta(hours=settings.PORTAL_SESSION_TTL_HOURS)
    start = timezone.now()
    data = os.urandom(200 * KIB)
    with time_machine.travel(start, tick=False):
        refused = api.start(data, 100 * KIB)
        api.upload(refused["id"], data, 100 * KIB)
        mine = api.start(b"abc", 3)
        theirs = Api(client, make_token(other_user)).start(b"abc", 3)
    fill(final, 150 * KIB)
    later = start + timedelta(hours=1)

    with time_machine.travel(later, tick=False):
        response = api.finalize(refused["id"])

    assert (response.status_code, error_code(response)) == (507, "insufficient_storage")
    reserve = settings.PORTAL_FREE_SPACE_RESERVE_BYTES
    assert response.json()["error"]["message"] == (
        f"the final volume has no room for {len(data)} bytes now (it keeps {reserve} bytes "
        "free); nothing was lost, try again later"
    )
    expiry = dict(UploadSession.objects.values_list("pk", "expires_at"))
    assert expiry == {
        UploadSession.objects.get(pk=refused["id"]).pk: later + ttl,
        UploadSession.objects.get(pk=mine["id"]).pk: start + ttl,
        UploadSession.objects.get(pk=theirs["id"]).pk: start + ttl,
    }
    kept = UploadSession.objects.get(pk=refused["id"])
    assert (kept.status, kept.updated_at) == (Status.IN_PROGRESS, later)


@pytest.mark.parametrize("closed", [Status.ABORTED, Status.FAILED, Status.FINALIZING])
def test_keeping_a_session_for_retries_never_touches_one_no_longer_open(
    user, portal_storage, closed
):
    """A session closed (or taken to finalize) between the 507 and its keeping stays as
    it is."""
    from portal.services import sessions
    from portal.services.finalize import request as finalize_request

    start = timezone.now()
    with time_machine.travel(start, tick=False):
        session, _ = sessions.create_session(user, {"filename": "a", "size_bytes": 10})
    UploadSession.objects.update(status=closed)
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        assert not finalize_request.keep_for_retries(session.pk)
    row = UploadSession.objects.get()
    assert (row.expires_at, row.updated_at) == (session.expires_at, session.updated_at)


# --- the file.uploaded event (docs/api.md, "Runner contract")


def test_the_file_uploaded_payload_is_the_documented_one(client, user, any_storage, settings):
    api = Api(client, make_token(user))
    data = b"%PDF-1.7 a small report"
    session = api.start(data, 10, filename="report.pdf", content_type="application/pdf")
    api.upload(session["id"], data, 10)
    response = api.finalize(session["id"])
    assert response.status_code == 200

    file = IngestFile.objects.get()
    event = OutboxEvent.objects.get()
    assert response.json() == {
        "file": {
            "id": str(file.id),
            "filename": "report.pdf",
            "content_type": "application/pdf",
            "size_bytes": len(data),
            "sha256": sha256(data),
            "status": "stored",
            "stored_at": file.stored_at.isoformat(),
        }
    }
    if settings.PORTAL_STORAGE == "s3":
        location = {
            "backend": "s3",
            "bucket": settings.AWS_STORAGE_BUCKET_NAME,
            "key": f"final/{file.storage_key}",
        }
    else:
        location = {
            "backend": "local",
            "bucket": "",
            "key": file.storage_key,
            "path": os.path.join(settings.PORTAL_DATA_DIR, "final", file.storage_key),
        }
    assert file.storage_key.endswith(file.id.hex)
    assert (event.event_type, event.aggregate_id, event.idempotency_key) == (
        "file.uploaded",
        str(file.id),
        str(file.id),
    )
    assert event.payload == {
        "event_type": "file.uploaded",
        "event_id": str(event.id),
        "occurred_at": event.next_attempt_at.isoformat(),
        "file": {
            "id": str(file.id),
            "filename": "report.pdf",
            "content_type": "application/pdf",
            "size_bytes": len(data),
            "sha256": sha256(data),
            "storage": location,
        },
        "actor": {"user_id": user.pk, "username": "alice"},
    }


# --- S3: the assembly's multipart upload is named on its session (cleanup spares it)


@pytest.mark.s3
def test_an_s3_copy_names_its_multipart_upload_on_the_session(
    client, user, settings, data_dir, moto_s3
):
    bucket = moto_s3.new_bucket()
    apply_storage(settings, "s3", data_dir, s3=moto_s3, bucket=bucket)
    settings.PORTAL_S3_COPY_ASSEMBLY = True
    api = Api(client, make_token(user))
    session = api.start(b"one part", 8)  # one part: copied server side, whatever its size
    api.upload(session["id"], b"one part", 8)

    assert api.finalize(session["id"]).status_code == 200

    row = UploadSession.objects.get()
    assert row.status == Status.COMPLETE and row.assembly_upload_id != ""
    assert moto_s3.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


# --- a session closed while its file was assembled


@pytest.fixture
def aborted_during_assembly(monkeypatch):
    """The session is aborted (by another actor, in the database) just after its final
    object was written: the storage call itself is the real one."""
    real = storage.assemble_final

    def then_aborted(*args, **kwargs):
        stored = real(*args, **kwargs)
        UploadSession.objects.update(status=Status.ABORTED, finished_at=timezone.now())
        return stored

    monkeypatch.setattr(storage, "assemble_final", then_aborted)


def test_a_session_aborted_during_finalize_is_not_logged_stored(
    api, portal_storage, aborted_during_assembly, caplog
):
    caplog.set_level(logging.INFO, logger="portal")
    session = api.start(b"abcdef", 3)
    api.upload(session["id"], b"abcdef", 3)

    response = api.finalize(session["id"])

    assert (response.status_code, error_code(response)) == (410, "session_aborted")
    assert stored_events(caplog) == []
    assert IngestFile.objects.get().status == IngestFile.Status.UPLOADING
    assert not OutboxEvent.objects.exists()


def test_portal_finalize_counts_a_session_aborted_during_its_assembly_as_failed(
    api, portal_storage, aborted_during_assembly, caplog
):
    caplog.set_level(logging.INFO, logger="portal")
    session = api.start(b"abcdef", 3)
    api.upload(session["id"], b"abcdef", 3)
    assert lease.begin(session["id"])
    UploadSession.objects.update(assembly_lease_until=timezone.now() - timedelta(seconds=1))

    report = finalize.run_finalize_job()

    assert (report.summary["completed"], report.summary["failed"]) == (0, 1)
    assert stored_events(caplog) == []
    assert not OutboxEvent.objects.exists()


# --- the job's summary


def test_portal_finalize_reports_how_long_it_ran(api, portal_storage):
    """``duration_ms``: the run's milliseconds (one assembly taken over: a few at least)."""
    import time

    session = api.start(b"abcdef", 3)
    api.upload(session["id"], b"abcdef", 3)
    assert lease.begin(session["id"])
    UploadSession.objects.update(assembly_lease_until=timezone.now() - timedelta(seconds=1))
    started = time.monotonic()
    report = finalize.run_finalize_job()
    elapsed_ms = (time.monotonic() - started) * 1000
    assert (report.summary["stopped"], report.summary["completed"]) == ("drained", 1)
    assert 1 <= report.summary["duration_ms"] <= elapsed_ms


# --- an assembly that fails unexpectedly is logged (the lease runs out, the job retries)


def test_an_assembly_that_fails_unexpectedly_is_logged_and_left_to_the_job(
    api, portal_storage, settings, monkeypatch, caplog
):
    settings.PORTAL_FINALIZE_WAIT_SECONDS = 0.3
    caplog.set_level(logging.INFO, logger="portal")

    def broken(*args, **kwargs):
        raise RuntimeError("disk controller on fire")

    monkeypatch.setattr(storage, "assemble_final", broken)
    session = api.start(b"abcdef", 3)
    api.upload(session["id"], b"abcdef", 3)

    response = api.finalize(session["id"])

    assert response.status_code == 202
    failed = [r for r in caplog.records if r.getMessage().startswith("assembly of session")]
    assert [(r.name, r.levelno, r.getMessage()) for r in failed] == [
        (
            "portal.services.finalize",
            logging.ERROR,
            f"assembly of session {session['id']} failed",
        )
    ]
    assert failed[0].exc_info[0] is RuntimeError
    assert UploadSession.objects.get().status == Status.FINALIZING


# --- the assembly's key and progress


def test_the_final_key_is_dated_by_the_files_creation_not_its_finalize(
    client, user, settings, data_dir
):
    """docs/api.md: ``final/2030/01/31/<file id>``; a session begun before midnight and
    finalized after it keeps its first day."""
    from datetime import UTC, datetime

    apply_storage(settings, "local", data_dir)
    api = Api(client, make_token(user))
    with time_machine.travel(datetime(2030, 1, 31, 23, 59, tzinfo=UTC), tick=False):
        session = api.start(b"abcdef", 3)
        api.upload(session["id"], b"abcdef", 3)
    with time_machine.travel(datetime(2030, 2, 1, 0, 10, tzinfo=UTC), tick=False):
        response = api.finalize(session["id"])
    assert response.status_code == 200, response.content
    file = IngestFile.objects.get()
    assert file.storage_key == f"2030/01/31/{file.id.hex}"
    assert (data_dir / "final" / "2030" / "01" / "31" / file.id.hex).read_bytes() == b"abcdef"


@pytest.mark.s3
def test_the_assembly_records_its_progress_on_the_session(
    api, settings, data_dir, moto_s3, monkeypatch
):
    """What a 202 shows as ``assembly.assembled_bytes`` (and the lease it renews) follows
    the parts as they are streamed into the final object (S3): all of them once it is
    written."""
    apply_storage(settings, "s3", data_dir, s3=moto_s3, bucket=moto_s3.new_bucket())
    real = storage.assemble_final
    seen = {}

    def then_look(*args, **kwargs):
        stored = real(*args, **kwargs)
        row = UploadSession.objects.get()
        seen.update(status=row.status, assembled=row.assembled_bytes)
        return stored

    monkeypatch.setattr(storage, "assemble_final", then_look)
    data = os.urandom(25)
    session = api.start(data, 10)
    api.upload(session["id"], data, 10)

    assert api.finalize(session["id"]).status_code == 200
    assert seen == {"status": Status.FINALIZING, "assembled": 25}
