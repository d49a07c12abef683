"""Pins for finalize (issue #31, the upload area, third round): an assembly touches only
its own session's lease, so a dead assembly beside a live one is still taken over."""

import shutil
from datetime import timedelta

import pytest
from django.utils import timezone

from portal import locks
from portal.models import IngestFile, UploadPart, UploadSession
from portal.services.finalize import lease
from tests.api_helpers import Api, make_token
from tests.conftest import apply_storage


@pytest.fixture
def api(client, user, portal_storage):
    return Api(client, make_token(user))


@pytest.fixture
def s3_api(client, user, settings, data_dir, moto_s3):
    """On S3 every assembled part reports progress (on local disk parts already in the
    file's hash are linked unread: no progress to report)."""
    apply_storage(settings, "s3", data_dir, s3=moto_s3, bucket=moto_s3.new_bucket())
    return Api(client, make_token(user))


def uploaded(api, data, chunk):
    session = api.start(data, chunk)["id"]
    api.upload(session, data, chunk)
    return session


def test_an_assembly_renews_only_its_own_lease(s3_api):
    """A finalize that reports progress must not renew another session's run-out lease:
    that assembly's process died and ``portal_finalize`` would never take it over."""
    api = s3_api
    dead = uploaded(api, b"dead", 4)
    assert lease.begin(dead)
    UploadSession.objects.filter(pk=dead).update(
        assembly_lease_until=timezone.now() - timedelta(seconds=1)
    )
    live = uploaded(api, b"0123456789" * 3, 10)

    assert api.finalize(live).status_code == 200

    assert str(lease.claim_expired()) == dead


def test_a_storage_outage_during_the_assembly_is_logged_with_its_session_and_file(
    client, user, settings, data_dir, caplog
):
    """The ``storage.unavailable`` record of a failed assembly names the session and the
    file (docs/logging.md's context fields): the operator finds the upload it held up."""
    apply_storage(settings, "local", data_dir)
    api = Api(client, make_token(user))
    session = uploaded(api, b"z" * 25, 10)
    part = data_dir / "temp" / UploadPart.objects.get(part_number=2).temp_key
    part.unlink()
    part.mkdir()  # read as a part: an OSError, not a changed part

    assert api.finalize(session).status_code == 503

    [record] = [r for r in caplog.records if getattr(r, "event", None) == "storage.unavailable"]
    row = UploadSession.objects.get()
    assert (record.session_id, record.file_id) == (session, str(row.file_id))
    assert "while assembling the file" in record.getMessage()


def test_a_completed_sessions_row_was_last_updated_when_it_completed(api):
    """The row's ``updated_at`` (the admin's record of its last change) is the completion,
    not the start of the assembly; its lease is gone and it counts every byte assembled."""
    session = uploaded(api, b"0123456789" * 3, 10)

    assert api.finalize(session).status_code == 200

    row = UploadSession.objects.get()
    assert row.updated_at == row.finished_at
    assert (row.assembly_lease_until, row.assembled_bytes) == (None, 30)


def test_finalize_of_an_incomplete_session_names_how_many_parts_are_missing(api):
    """The 409 says how many of how many parts are missing and which (docs/api.md)."""
    session = api.start(b"x" * 55, 10)["id"]
    for number in (1, 2, 5):
        assert api.put(session, number, b"x" * 10).status_code == 201

    response = api.finalize(session)

    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "parts_missing",
            "message": "3 of 6 parts are missing",
            "missing_parts": "3-4,6",
            "missing_part_numbers": [3, 4, 6],
        }
    }
    assert UploadSession.objects.get().status == UploadSession.Status.IN_PROGRESS


def test_a_storage_outage_while_checking_room_for_finalize_names_the_session(
    client, user, settings, data_dir, caplog
):
    """Before the assembly starts: the final root cannot be measured (it is a file). The
    ``storage.unavailable`` record says which session's finalize was refused."""
    apply_storage(settings, "local", data_dir)
    api = Api(client, make_token(user))
    session = uploaded(api, b"y" * 25, 10)
    shutil.rmtree(data_dir / "final")
    (data_dir / "final").write_text("not a directory")

    assert api.finalize(session).status_code == 503

    [record] = [r for r in caplog.records if getattr(r, "event", None) == "storage.unavailable"]
    assert record.session_id == session
    assert "while checking free space" in record.getMessage()
    assert UploadSession.objects.get().status == UploadSession.Status.IN_PROGRESS


def test_a_finalize_that_fails_the_session_logs_which_session_and_file(api, caplog):
    """The WARNING ``finalize failed`` carries the session and the file: the one line an
    operator has for why an upload ended ``failed``."""
    session = uploaded(api, b"0123456789" * 3, 10)
    UploadPart.objects.filter(part_number=2).update(temp_key="")

    response = api.finalize(session)

    assert response.status_code == 410
    row = UploadSession.objects.get()
    [record] = [r for r in caplog.records if r.getMessage().startswith("finalize failed: ")]
    assert record.levelname == "WARNING"
    assert (record.session_id, record.file_id) == (session, str(row.file_id))
    assert row.failure_reason in record.getMessage()


def test_a_finalize_while_another_process_assembles_the_session_does_not_assemble_it(api, settings):
    """The session's assembly lock is held elsewhere (another worker, ``portal_finalize``):
    this request only watches, 202 when its wait ends, and no second object is written."""
    settings.PORTAL_FINALIZE_WAIT_SECONDS = 0.3
    session = uploaded(api, b"0123456789" * 3, 10)

    with locks.hold(f"finalize:{session}"):
        response = api.finalize(session)

    assert response.status_code == 202
    assert response.json()["status"] == "finalizing"
    assert not IngestFile.objects.filter(status=IngestFile.Status.STORED).exists()


def test_an_assembly_handed_back_after_an_outage_leaves_other_leases_alone(
    client, user, settings, data_dir
):
    """Only the failed assembly becomes claimable: a live one beside it keeps its lease
    and its attempt count (else ``portal_finalize`` takes over a live assembly)."""
    apply_storage(settings, "local", data_dir)
    api = Api(client, make_token(user))
    live = uploaded(api, b"live", 4)
    assert lease.begin(live)
    before = UploadSession.objects.values_list("assembly_lease_until", "assembly_attempts")
    live_before = before.get(pk=live)
    broken = uploaded(api, b"z" * 25, 10)
    part = data_dir / "temp" / UploadPart.objects.get(session_id=broken, part_number=2).temp_key
    part.unlink()
    part.mkdir()

    assert api.finalize(broken).status_code == 503

    assert before.get(pk=live) == live_before
    assert str(lease.claim_expired()) == broken
    assert lease.claim_expired() is None


def test_an_s3_assembly_records_its_multipart_upload_on_its_own_session_only(s3_api):
    """Cleanup aborts the multipart upload a failed session names: another session that
    is finalizing meanwhile must not be given this one's upload id."""
    api = s3_api
    other = uploaded(api, b"other", 5)
    assert lease.begin(other)
    session = uploaded(api, b"one part", 8)  # one part: copied server-side

    assert api.finalize(session).status_code == 200

    upload_id = UploadSession.objects.values_list("assembly_upload_id", flat=True)
    assert (upload_id.get(pk=other), bool(upload_id.get(pk=session))) == ("", True)


def test_a_process_runs_at_most_four_assemblies_at_once(api, settings):
    """Four assemblies hold this process's slots: a fifth finalize starts none and hands
    the session to ``portal_finalize`` (claimable at once) when its wait ends."""
    from portal.services.finalize import request

    settings.PORTAL_FINALIZE_WAIT_SECONDS = 0
    session = uploaded(api, b"0123456789" * 2, 10)
    held = [request._assembly_slots.acquire(timeout=10) for _ in range(4)]  # bounded
    try:
        response = api.finalize(session)
    finally:
        for _ in filter(None, held):
            request._assembly_slots.release()

    assert held == [True] * 4
    assert response.status_code == 202
    assert str(lease.claim_expired()) == session
