"""Pins for the finalize lease, sixth round (issue #31): which rows a claim and a hand-back
touch, on the run's database (PostgreSQL: a row another claimer holds is skipped)."""

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from portal.models import IngestFile, UploadSession
from portal.services.finalize import lease
from tests.fixtures import row_locked

Status = UploadSession.Status


def session_row(owner, *, status=Status.FINALIZING, lease_until=None, attempts=1):
    file = IngestFile.objects.create(original_filename="a.bin", size_bytes=10, uploaded_by=owner)
    return UploadSession.objects.create(
        file=file,
        owner=owner,
        status=status,
        chunk_size_bytes=5,
        total_size_bytes=10,
        total_parts=2,
        expires_at=timezone.now() + timedelta(hours=1),
        assembly_lease_until=lease_until,
        assembly_attempts=attempts,
    )


@pytest.mark.postgres
def test_a_claim_skips_the_expired_lease_another_claimer_holds(postgres_only, user):
    """Two ``portal_finalize`` runs at once (every host runs one each minute): the second
    takes the next expired lease at once rather than queueing behind the first's row."""
    now = timezone.now()
    held = session_row(user, lease_until=now - timedelta(minutes=2))  # the oldest: first pick
    free = session_row(user, lease_until=now - timedelta(minutes=1))
    with row_locked(UploadSession.objects.filter(pk=held.pk)):
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '3s'")  # a wait fails the test, not hangs it
        try:
            started = time.monotonic()
            claimed = lease.claim_expired()
            took = time.monotonic() - started
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
    assert (claimed, took < 2) == (free.pk, True)
    untouched = UploadSession.objects.get(pk=held.pk)
    assert (untouched.assembly_attempts, untouched.assembly_lease_until) == (
        1,
        held.assembly_lease_until,
    )


@pytest.mark.postgres
def test_a_lock_whose_connection_died_while_held_ends_quietly_and_is_taken_again(
    transactional_db, postgres_only
):
    """A holder whose database connection was killed (a failover, an idle timeout) already
    lost its session lock: leaving the block must not fail on the unlock, and the next
    ``hold`` on this thread must reconnect and get the lock, not reuse the dead connection."""
    import psycopg

    from portal import locks

    with locks.hold("finalize:dead-connection"):
        backend = connection.connection.info.backend_pid
        params = connection.get_connection_params()
        with psycopg.connect(**{**params, "autocommit": True}) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [backend])
    with locks.hold("finalize:dead-connection"):
        assert connection.connection.info.backend_pid != backend
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
        assert cursor.fetchone()[0] == 0


def backends():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@pytest.mark.postgres
def test_an_assembly_thread_closes_its_connection_when_done(postgres_only, user, portal_storage):
    """Each finalize assembles on a thread of its own: its connection must be closed when
    the thread ends, or a worker keeps one idle backend per assembly until PostgreSQL's
    ``max_connections`` refuses everyone."""
    from django.test import Client

    from tests.api_helpers import Api, make_token

    api = Api(Client(), make_token(user))
    before = backends()
    for data in (b"a" * 30, b"b" * 30, b"c" * 30):
        session = api.start(data, 10)
        api.upload(session["id"], data, 10)
        assert api.finalize(session["id"]).status_code == 200
    deadline = time.monotonic() + 5
    while backends() > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert backends() == before


@pytest.mark.parametrize("status", [Status.COMPLETE, Status.FAILED, Status.IN_PROGRESS])
def test_a_late_progress_report_leaves_a_session_no_longer_finalizing_alone(user, status):
    """A transfer thread may report once more after its session completed or failed: the
    report must not give that session a lease again (the stalled-assembly figures read
    it) nor overwrite its assembled bytes."""
    now = timezone.now()
    row = session_row(user, status=status, lease_until=None)
    UploadSession.objects.filter(pk=row.pk).update(assembled_bytes=10)
    other = session_row(user, lease_until=now)

    lease.progress_recorder(row.pk)(4)
    lease.progress_recorder(other.pk)(6)

    kept = UploadSession.objects.get(pk=row.pk)
    assert (kept.assembly_lease_until, kept.assembled_bytes) == (None, 10)
    renewed = UploadSession.objects.get(pk=other.pk)
    assert renewed.assembled_bytes == 6 and renewed.assembly_lease_until > now


@pytest.mark.parametrize("status", [Status.COMPLETE, Status.ABORTED])
def test_an_upload_id_reported_after_the_session_left_finalizing_is_not_recorded(user, status):
    """Only a finalizing session names its assembly's S3 multipart upload (cleanup aborts
    the ones no session names): a late report must not stick to a closed session."""
    row = session_row(user, status=status)
    live = session_row(user, lease_until=timezone.now())
    lease.record_upload(row.pk, "late-upload")
    lease.record_upload(live.pk, "live-upload")
    assert UploadSession.objects.get(pk=row.pk).assembly_upload_id == ""
    assert UploadSession.objects.get(pk=live.pk).assembly_upload_id == "live-upload"


@pytest.mark.parametrize("outage", [False, True])
def test_a_hand_back_leaves_a_session_no_longer_finalizing_alone(user, outage):
    """An assembler that failed the session (part corrupt: 410) still hands its lease back:
    the failed row must keep no lease and its attempt count, only a finalizing one is
    made claimable."""
    failed = session_row(user, status=Status.FAILED, lease_until=None, attempts=3)
    live = session_row(user, lease_until=timezone.now() + timedelta(minutes=1), attempts=3)

    lease.hand_back(failed.pk, outage=outage)
    lease.hand_back(live.pk, outage=outage)

    kept = UploadSession.objects.get(pk=failed.pk)
    assert (kept.assembly_lease_until, kept.assembly_attempts) == (None, 3)
    handed = UploadSession.objects.get(pk=live.pk)
    assert handed.assembly_lease_until <= timezone.now()
    assert handed.assembly_attempts == (2 if outage else 3)


def test_a_file_lock_on_a_file_its_holder_just_removed_is_retried_on_the_path(
    settings, tmp_path, monkeypatch
):
    """SQLite: between this process opening the lock file and locking it, the holder lets
    go (removes it) and another takes the name anew. The lock got on the removed file
    guards nothing: the lock must be tried again on what the path names (busy), or two
    processes both assemble one session."""
    import fcntl
    import os

    from portal import locks

    if connection.vendor != "sqlite":
        pytest.skip("file locks are SQLite's; PostgreSQL takes advisory locks")
    settings.PORTAL_DATA_DIR = str(tmp_path)
    real_flock, newcomer = fcntl.flock, []

    def holder_lets_go_and_another_takes_the_name(fd, operation):
        if not newcomer:
            [path] = (tmp_path / "locks").iterdir()
            path.unlink()
            newcomer.append(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            real_flock(newcomer[0], fcntl.LOCK_EX | fcntl.LOCK_NB)
        return real_flock(fd, operation)

    monkeypatch.setattr(locks.fcntl, "flock", holder_lets_go_and_another_takes_the_name)
    try:
        with pytest.raises(locks.LockBusy), locks.hold("finalize:race"):
            pass
    finally:
        for fd in newcomer:
            os.close(fd)


def test_starting_a_finalize_records_the_change_on_the_session_row(user):
    """``begin`` moves the row to finalizing: its ``updated_at`` (the admin's record of the
    last change) is that instant, and a session not open is left as it was."""
    import time_machine

    start = timezone.now()
    row = session_row(user, status=Status.IN_PROGRESS)
    closed = session_row(user, status=Status.ABORTED)
    with time_machine.travel(start + timedelta(minutes=5), tick=False):
        assert lease.begin(row.pk)
        assert not lease.begin(closed.pk)
    begun = UploadSession.objects.get(pk=row.pk)
    assert (begun.status, begun.updated_at) == (Status.FINALIZING, start + timedelta(minutes=5))
    assert UploadSession.objects.get(pk=closed.pk).updated_at == closed.updated_at
