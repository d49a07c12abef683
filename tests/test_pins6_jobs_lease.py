"""Pins for the finalize lease, sixth round (issue #31): which rows a claim and a hand-back
touch, on the run's database (PostgreSQL: a row another claimer holds is skipped)."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from portal.models import IngestFile, UploadSession
from portal.services.finalize import lease

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
    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                list(UploadSession.objects.select_for_update().filter(pk=held.pk))
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '3s'")  # a wait fails the test, not hangs it
        started = time.monotonic()
        claimed = lease.claim_expired()
        took = time.monotonic() - started
    finally:
        release.set()
        holder.join(10)
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
