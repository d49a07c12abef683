"""Which assembly ``portal_finalize`` takes over first (``portal.services.finalize.lease``)
and when it gives one up, on the run's database; the lease's arithmetic (its length, the
instant it runs out, attempts counted or not), the job's counts, and ``assemble`` when the
session is complete already, not finalizing, or completed by another assembler."""

import logging
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from portal import storage
from portal.models import UploadSession
from portal.services.finalize import MAX_ATTEMPTS, lease
from tests.api_helpers import Api, error_code, make_token, sha256


@pytest.fixture
def api(client, user, portal_storage):
    return Api(client, make_token(user))


def test_the_assembly_whose_lease_ran_out_first_is_taken_over_first(client, user, portal_storage):
    api, start = Api(client, make_token(user)), timezone.now()
    sessions = [api.start(b"x" * 10, 10)["id"] for _ in range(3)]
    for minutes, session in zip((2, 0, 1), sessions, strict=True):
        api.upload(session, b"x" * 10, 10)
        with time_machine.travel(start + timedelta(minutes=minutes)):
            lease.begin(session)

    with time_machine.travel(start + timedelta(hours=1)):
        taken = [lease.claim_expired() for _ in range(4)]

    assert [str(pk) if pk else None for pk in taken] == [*(sessions[i] for i in (1, 2, 0)), None]


def test_portal_finalize_makes_max_attempts_before_it_gives_up(client, user, portal_storage):
    """An assembly whose process died ``MAX_ATTEMPTS - 1`` times is tried once more; one
    that died ``MAX_ATTEMPTS`` times is failed."""
    api = Api(client, make_token(user))
    attempts = {}
    for made in (MAX_ATTEMPTS - 1, MAX_ATTEMPTS):
        session = api.start(b"x" * 10, 10)["id"]
        api.upload(session, b"x" * 10, 10)
        lease.begin(session)
        UploadSession.objects.filter(pk=session).update(
            assembly_attempts=made, assembly_lease_until=timezone.now() - timedelta(seconds=1)
        )
        attempts[session] = made

    call_command("portal_finalize")

    done = dict(UploadSession.objects.values_list("pk", "status"))
    assert {attempts[str(pk)]: status for pk, status in done.items()} == {
        MAX_ATTEMPTS - 1: UploadSession.Status.COMPLETE,
        MAX_ATTEMPTS: UploadSession.Status.FAILED,
    }


def finalizing(api, data=b"abc"):
    session = api.start(data, len(data))["id"]
    api.upload(session, data, len(data))
    return session


def test_a_finalize_takes_a_fresh_lease_of_a_minute_and_starts_its_count_again(api):
    session = finalizing(api)
    UploadSession.objects.update(assembled_bytes=2, assembly_attempts=3)
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        assert lease.begin(session)
    row = UploadSession.objects.get()
    assert row.assembly_lease_until == now + timedelta(seconds=60)
    assert (row.status, row.assembled_bytes, row.assembly_attempts) == ("finalizing", 0, 4)
    assert not lease.begin(session)  # not open any more


def test_a_lease_is_taken_over_only_once_it_has_run_out(api):
    session = finalizing(api)
    assert lease.begin(session)
    until = UploadSession.objects.get().assembly_lease_until
    with time_machine.travel(until, tick=False):
        assert lease.claim_expired() is None
    with time_machine.travel(until + timedelta(microseconds=1), tick=False):
        assert str(lease.claim_expired()) == session
    assert UploadSession.objects.get().assembly_attempts == 2


def test_a_lease_handed_back_after_an_outage_does_not_count_the_attempt(api):
    session = finalizing(api)
    assert lease.begin(session)
    lease.hand_back(session)
    row = UploadSession.objects.get()
    assert row.assembly_attempts == 1 and row.assembly_lease_until <= timezone.now()
    lease.hand_back(session, outage=True)
    assert UploadSession.objects.get().assembly_attempts == 0


def test_a_session_failed_without_a_reason_during_its_assembly_is_410_session_failed(
    api, monkeypatch
):
    from portal.services.finalize import request

    session = finalizing(api)
    monkeypatch.setattr(
        request, "assemble", lambda pk: UploadSession.objects.update(status="failed")
    )
    response = api.finalize(session)
    assert (response.status_code, error_code(response)) == (410, "session_failed")


def test_portal_finalize_tries_an_outage_once_a_run_and_does_not_count_it(api, monkeypatch):
    from portal.services import finalize

    session = finalizing(api)
    assert lease.begin(session)
    UploadSession.objects.update(assembly_lease_until=timezone.now() - timedelta(seconds=1))
    tried = []

    def outage(pk):
        tried.append(str(pk))
        raise storage.StorageUnavailable("no route to host")

    monkeypatch.setattr(finalize, "assemble", outage)
    summary = finalize.run_finalize_job(max_seconds=5).summary
    assert (summary["errors"], summary["completed"], summary["stopped"]) == (1, 0, "drained")
    assert tried == [session]
    row = UploadSession.objects.get()
    assert (row.status, row.assembly_attempts) == ("finalizing", 1)
    assert row.assembly_lease_until <= timezone.now()  # the next run takes it at once


def test_portal_finalize_counts_an_assembly_that_failed_the_session(api, monkeypatch):
    from portal.services import finalize
    from portal.services.errors import Gone

    session = finalizing(api)
    assert lease.begin(session)
    UploadSession.objects.update(assembly_lease_until=timezone.now() - timedelta(seconds=1))

    def corrupt(pk):
        raise Gone("the upload session failed: part 1 changed", code="part_corrupt")

    monkeypatch.setattr(finalize, "assemble", corrupt)
    summary = finalize.run_finalize_job(max_seconds=5).summary
    assert (summary["failed"], summary["completed"], summary["errors"]) == (1, 0, 0)


def test_assemble_returns_a_complete_sessions_file_and_refuses_an_open_or_closed_one(api):
    from portal.services.errors import Conflict, Gone
    from portal.services.finalize import assemble

    done = finalizing(api)
    stored = api.finalize(done).json()["file"]
    assert str(assemble(done).pk) == stored["id"]  # a takeover that comes late: no error

    session = finalizing(api, b"xyz")
    with pytest.raises(Conflict) as refused:
        assemble(session)
    assert refused.value.code == "session_not_finalizing"
    api.abort(session)
    with pytest.raises(Gone) as gone:
        assemble(session)
    assert gone.value.code == "session_aborted"


def test_an_assembly_that_another_completed_meanwhile_keeps_the_stored_file(api, monkeypatch):
    """Two assemblers of one session (a takeover while the first still ran): the second to
    commit finds the session complete and leaves the first one's final object alone."""
    from portal.models import IngestFile, OutboxEvent
    from portal.services.finalize import assembly
    from tests import objects

    session = finalizing(api)
    assert lease.begin(session)
    build = assembly._build

    def build_while_another_completes(row, sources):
        stored = build(row, sources)
        assembly._commit(row, stored)  # the other assembler wins the race
        return build(row, sources)

    monkeypatch.setattr(assembly, "_build", build_while_another_completes)
    file = assembly.assemble(session)
    row = IngestFile.objects.get()
    assert (file.pk, file.status, row.status) == (row.pk, "stored", "stored")
    assert b"".join(objects.iter_final(row.storage_key)) == b"abc"
    assert OutboxEvent.objects.count() == 1


def test_a_stored_file_is_logged_with_its_size_and_sha256(api, caplog):
    caplog.set_level(logging.INFO, logger="portal")
    session = api.start(b"x" * 25, 10)["id"]
    api.upload(session, b"x" * 25, 10)
    file = api.finalize(session).json()["file"]
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "file.stored"]
    assert (record.session_id, record.file_id) == (session, file["id"])
    assert (record.size_bytes, record.sha256) == (25, sha256(b"x" * 25))


def test_portal_finalize_out_of_time_says_so_and_leaves_the_assembly(api):
    from portal.services import finalize

    session = finalizing(api)
    assert lease.begin(session)
    UploadSession.objects.update(assembly_lease_until=timezone.now() - timedelta(seconds=1))
    summary = finalize.run_finalize_job(max_seconds=0).summary
    assert (summary["stopped"], summary["completed"], summary["outcome"]) == ("time", 0, "ok")
    assert UploadSession.objects.get().status == "finalizing"  # the next run takes it


def test_a_session_given_up_during_a_wait_is_410_session_failed_with_its_reason(api, monkeypatch):
    from portal.services.finalize import request

    session = finalizing(api)
    reason = "the assembly gave up after 10 attempts"
    monkeypatch.setattr(
        request,
        "assemble",
        lambda pk: UploadSession.objects.update(status="failed", failure_reason=reason),
    )
    response = api.finalize(session)
    assert (response.status_code, error_code(response)) == (410, "session_failed")
    assert response.json()["error"]["message"] == f"the upload session is failed: {reason}"
