"""Race: parts arriving at the instant their sessions expire, while cleanup expires them.

Each session gets its last part at a moment spread around its ``expires_at``, while a
cleanup thread runs the stale step in a tight loop. Every outcome must be one of two:
the part is accepted and the session lives (its TTL slid), or the part is refused (410)
and, after the next full run, no temp object of that session survives.
"""

import io
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from portal import storage
from portal.models import UploadSession
from portal.services import chunks, cleanup, sessions
from portal.services.errors import Gone
from tests.seed import storage_listing, temp_keys_of

SESSIONS = 12
SPREAD_S = 0.3


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_parts_racing_expiry_either_land_and_slide_or_leave_nothing(portal_storage, user):
    created = []
    for i in range(SESSIONS):
        session, _ = sessions.create_session(
            user, {"filename": f"r{i}.bin", "size_bytes": 20, "chunk_size_bytes": 10}
        )
        chunks.receive_part(user, session.id, 1, io.BytesIO(b"a" * 10), "10")
        created.append(session.id)
    boundary = timezone.now() + timedelta(seconds=1)
    UploadSession.objects.filter(pk__in=created).update(expires_at=boundary)
    start = time.monotonic() + (boundary - timezone.now()).total_seconds()
    outcome = {}
    done = threading.Event()

    def upload(index, session_id):
        offset = -SPREAD_S / 2 + SPREAD_S * index / (SESSIONS - 1)
        time.sleep(max(0.0, start + offset - time.monotonic()))
        try:
            chunks.receive_part(user, session_id, 2, io.BytesIO(b"b" * 10), "10")
            outcome[session_id] = "accepted"
        except Gone:
            outcome[session_id] = "gone"
        finally:
            connection.close()

    def expire_continuously():
        try:
            while not done.is_set():
                cleanup.cleanup_stale_sessions(cleanup.CleanupOptions(batch_size=5))
        finally:
            connection.close()

    cleaner = threading.Thread(target=expire_continuously)
    uploaders = [
        threading.Thread(target=upload, args=(index, session_id))
        for index, session_id in enumerate(created)
    ]
    cleaner.start()
    for thread in uploaders:
        thread.start()
    for thread in uploaders:
        thread.join(60)
    done.set()
    cleaner.join(60)

    assert set(outcome.values()) <= {"accepted", "gone"} and len(outcome) == SESSIONS
    results = cleanup.run_cleanup()
    assert all(result.failed == 0 for result in results)
    cleanup.sweep_temp_storage(cleanup.CleanupOptions(now=timezone.now() + timedelta(days=1)))
    listed = set(storage_listing()["temp"])
    for session_id, result in outcome.items():
        session = UploadSession.objects.get(pk=session_id)
        keys = set(temp_keys_of(session))
        if result == "accepted":
            assert session.status == UploadSession.Status.IN_PROGRESS
            assert session.expires_at > boundary
            assert session.parts.count() == 2
            in_place = storage.backend().assembles_in_place
            assert keys <= listed and len(keys) == (1 if in_place else 2)
        else:
            assert session.status == UploadSession.Status.FAILED
            assert session.failure_reason == "expired"
            assert keys == set()
            assert not any(key.split("/")[1].startswith(session_id.hex) for key in listed)
    open_keys = {
        key
        for session in UploadSession.objects.filter(status__in=UploadSession.OPEN_STATUSES)
        for key in temp_keys_of(session)
    }
    assert listed == open_keys


@pytest.mark.django_db(transaction=True)
def test_a_transition_between_the_candidate_query_and_the_row_lock_wins(
    portal_storage, user, monkeypatch
):
    """Deterministic interleaving: after the stale step read its candidates and before it
    locks them, another connection commits an abort and a finalize. The step must re-check
    the locked rows and leave both alone (on SQLite and on PostgreSQL alike)."""
    from portal.services import finalize
    from portal.services.cleanup import stale
    from tests.seed import make_session

    past = timezone.now() - timedelta(minutes=1)
    aborted = make_session(user, total_parts=2, expires_at=past)
    finalized = make_session(user, total_parts=2, expires_at=past, as_uploaded=True)
    expired = make_session(user, total_parts=2, expires_at=past)
    real_batches = stale.leaving_batches
    interleaved = []

    def commit_in_another_connection(work):
        errors = []

        def run():
            try:
                work()
            except Exception as exc:  # reported below, in the test's thread
                errors.append(exc)
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(30)
        assert not errors, errors

    def batches_with_transitions(queryset, run):
        for ids in real_batches(queryset, run):
            if not interleaved:
                assert {aborted.pk, finalized.pk, expired.pk} <= set(ids)
                # Finalize checks the TTL, as a client's request would: give it time left.
                UploadSession.objects.filter(pk=finalized.pk).update(
                    expires_at=timezone.now() + timedelta(minutes=5)
                )
                commit_in_another_connection(lambda: sessions.abort_session(user, aborted.pk))
                commit_in_another_connection(lambda: finalize.finalize_session(user, finalized.pk))
                UploadSession.objects.filter(pk=finalized.pk).update(expires_at=past)
                interleaved.append(ids)
            yield ids

    monkeypatch.setattr(stale, "leaving_batches", batches_with_transitions)

    result = cleanup.cleanup_stale_sessions()

    assert interleaved, "the hook never ran"
    assert result.counts["sessions_expired"] == 1
    statuses = dict(UploadSession.objects.values_list("pk", "status"))
    assert statuses[aborted.pk] == UploadSession.Status.ABORTED
    assert statuses[finalized.pk] == UploadSession.Status.COMPLETE
    assert statuses[expired.pk] == UploadSession.Status.FAILED
    aborted.refresh_from_db()
    finalized.refresh_from_db()
    assert aborted.failure_reason == "aborted by the client"
    assert finalized.file.status == "stored"
