"""The part path's SQL (portal.services.part_sql) on real rows of the run's database
(SQLite, and PostgreSQL in CI's second pass), the outcome read back through the ORM: the
columns read and written (datetimes to the microsecond, the hash state's bytes), the
conditions refused, and another session with the same part numbers left alone."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import OperationalError, connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.models import UploadPart, UploadSession
from portal.services import part_sql
from portal.services.part_sql import PART_FIELDS
from portal.storage import StoredObject
from tests import part_sql_helpers
from tests.api_helpers import Api, make_token
from tests.part_sql_helpers import CHUNK, open_session, row

sessions, session = part_sql_helpers.sessions, part_sql_helpers.session  # fixtures
STATE = bytes(range(112))


def stored(number):
    return StoredObject(key=f"k/{number}", size=10 + number, sha256=f"{number:064x}", md5="m")


def test_range_state_is_the_status_and_whether_the_part_is_recorded(session):
    assert part_sql.range_state(session.pk, 1) == ("in_progress", True)
    assert part_sql.range_state(str(session.pk), 2) == ("in_progress", False)
    assert part_sql.range_state(uuid.uuid4(), 1) == (None, False)


def test_lock_session_reads_what_the_orm_reads_and_locks_where_rows_lock(session):
    expected = UploadSession.objects.only(*PART_FIELDS).get(pk=session.pk)
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        locked = part_sql.lock_session(session.pk)
        read = {f: getattr(locked, f) for f in PART_FIELDS}
        missing = part_sql.lock_session(uuid.uuid4())

    assert len(queries.captured_queries) == 2  # the fields came with the row
    assert locked.pk == session.pk and missing is None
    assert read == {f: getattr(expected, f) for f in PART_FIELDS}
    assert timezone.is_aware(locked.expires_at)
    locking = "FOR UPDATE" in queries.captured_queries[0]["sql"]
    assert locking == connection.features.has_select_for_update


def lock_in_another_transaction(session_pk, timeout_ms):
    """What ``lock_session`` gives a second connection that waits at most ``timeout_ms``:
    the row, or the error the wait ended with."""
    outcome = []

    def second():
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL lock_timeout = '{int(timeout_ms)}ms'")
                outcome.append(part_sql.lock_session(session_pk))
        except OperationalError as exc:
            outcome.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(timeout=30)
    return outcome[0]


def test_a_locked_session_makes_a_second_transaction_wait_for_it(postgres_only, session):
    """The row is locked, not only read: a second part's transaction waits until the first
    ends (it neither reads past the lock nor skips the row)."""
    with transaction.atomic():
        assert part_sql.lock_session(session.pk).pk == session.pk
        waited = lock_in_another_transaction(session.pk, 300)
    assert isinstance(waited, OperationalError) and "lock timeout" in str(waited)
    assert lock_in_another_transaction(session.pk, 300).pk == session.pk


def test_lock_session_outside_a_transaction_is_refused(session):
    with pytest.raises(TransactionManagementError):
        part_sql.lock_session(session.pk)


def test_counted_session_says_whether_the_part_the_hash_needs_is_in(session):
    expected = UploadSession.objects.only(*PART_FIELDS).get(pk=session.pk)
    counted = part_sql.counted_session(session.pk)
    assert {f: getattr(counted, f) for f in PART_FIELDS} == {
        f: getattr(expected, f) for f in PART_FIELDS
    }
    assert counted.hash_next_in  # part 1
    UploadSession.objects.filter(pk=session.pk).update(hashed_parts=1)
    assert not part_sql.counted_session(session.pk).hash_next_in  # part 2
    assert part_sql.counted_session(uuid.uuid4()) is None


def test_insert_part_writes_the_row_the_orm_would_and_a_second_is_not_inserted(session):
    now = timezone.now().replace(microsecond=123456)

    assert part_sql.insert_part(session.pk, 2, stored(2), now) is True

    row = UploadPart.objects.get(session=session, part_number=2)
    assert (row.size_bytes, row.sha256, row.temp_key, row.md5) == (12, f"{2:064x}", "k/2", "m")
    assert row.created_at == now
    assert part_sql.insert_part(session.pk, 2, stored(3), now) is False
    assert UploadPart.objects.get(session=session, part_number=2).sha256 == f"{2:064x}"


@pytest.mark.parametrize(("hashed", "saved"), [(None, None), ((2, STATE), 2), ((3, STATE), None)])
def test_count_part_adds_the_part_and_extends_the_session(session, hashed, saved):
    """The hash is saved only where it waits for the part it was fed."""
    UploadSession.objects.filter(pk=session.pk).update(hashed_parts=1, hash_state=STATE[::-1])
    before = UploadSession.objects.get(pk=session.pk)
    now = timezone.now().replace(microsecond=654321)

    counted = part_sql.count_part(
        session.pk, 99, expires_at=now + timedelta(hours=2), now=now, hashed=hashed
    )

    after = UploadSession.objects.get(pk=session.pk)
    assert counted is True
    assert after.completed_parts == before.completed_parts + 1
    assert after.bytes_received == before.bytes_received + 99
    assert (after.status, after.expires_at, after.updated_at) == (
        "in_progress",
        now + timedelta(hours=2),
        now,
    )
    assert (after.hashed_parts, bytes(after.hash_state)) == (
        (2, STATE) if saved else (1, STATE[::-1])
    )


@pytest.mark.parametrize("change", [{"status": "finalizing"}, {"status": "aborted"}, "expired"])
def test_count_part_leaves_a_closed_or_expired_session_alone(session, change):
    now = timezone.now()
    if change == "expired":
        change = {"expires_at": now}
    UploadSession.objects.filter(pk=session.pk).update(**change)
    before = row(session.pk)

    counted = part_sql.count_part(session.pk, 5, expires_at=now + timedelta(hours=2), now=now)

    assert counted is False and row(session.pk) == before


def test_waiting_parts_are_the_parts_after_the_hash_in_order_with_a_temp_object(session):
    UploadSession.objects.filter(pk=session.pk).update(hash_state=STATE)
    part_sql.insert_part(session.pk, 4, stored(4), timezone.now())
    UploadPart.objects.filter(session=session, part_number=3).update(temp_key="")

    found, held, parts = part_sql.waiting_parts(session.pk, 10, timezone.now())

    assert [p.part_number for p in parts] == [1, 4]
    assert parts[1] == part_sql.WaitingPart(4, 14, f"{4:064x}", "k/4", None)
    assert (found.hashed_parts, bytes(found.hash_state), found.chunk_size_bytes) == (
        0,
        STATE,
        CHUNK,
    )
    assert (found.total_size_bytes, found.total_parts, held) == (4 * CHUNK, 4, False)
    assert [p.part_number for p in part_sql.waiting_parts(session.pk, 1, timezone.now())[2]] == [1]
    UploadSession.objects.filter(pk=session.pk).update(hashed_parts=1)
    assert [p.part_number for p in part_sql.waiting_parts(session.pk, 10, timezone.now())[2]] == [4]


def test_waiting_parts_come_in_part_order_whatever_order_they_were_recorded_in(
    sessions, client, user
):
    session = open_session(Api(client, make_token(user)), [4, 2, 3, 1])

    found = part_sql.waiting_parts(session.pk, 10, timezone.now())

    assert [p.part_number for p in found[2]] == [1, 2, 3, 4]


def test_waiting_parts_say_whether_a_claim_runs_and_nothing_for_a_closed_session(session):
    now = timezone.now()
    UploadSession.objects.filter(pk=session.pk).update(hash_claimed_until=now)
    assert part_sql.waiting_parts(session.pk, 10, now)[1] is True
    assert part_sql.waiting_parts(session.pk, 10, now + timedelta(microseconds=1))[1] is False

    for closed in ("finalizing", "complete", "failed", "aborted"):
        UploadSession.objects.filter(pk=session.pk).update(status=closed)
        assert part_sql.waiting_parts(session.pk, 10, now) is None
    assert part_sql.waiting_parts(uuid.uuid4(), 10, now) is None


def test_a_claim_is_taken_once_for_the_part_the_hash_needs_and_runs_out(session):
    now = timezone.now().replace(microsecond=111111)
    until = now + timedelta(seconds=60)

    assert part_sql.claim_hash(session.pk, 2, now, until) is False  # the hash needs part 1
    assert part_sql.claim_hash(session.pk, 1, now, until) is True
    assert UploadSession.objects.get(pk=session.pk).hash_claimed_until == until
    assert part_sql.claim_hash(session.pk, 1, now, until) is False  # held
    assert part_sql.claim_hash(session.pk, 1, until, until) is False  # held until it ends
    later = until + timedelta(microseconds=1)
    assert part_sql.claim_hash(session.pk, 1, later, later + timedelta(seconds=60)) is True


def test_the_hash_moves_only_under_its_claim_and_lets_go_of_it(session):
    now = timezone.now().replace(microsecond=222222)
    claim = now + timedelta(seconds=60)
    assert part_sql.claim_hash(session.pk, 1, now, claim)

    assert part_sql.move_hash(session.pk, 1, 1, STATE, claim + timedelta(microseconds=1)) is False
    # an older token: this request's claim ran out and another request's holds the session
    assert part_sql.move_hash(session.pk, 1, 1, STATE, claim - timedelta(seconds=1)) is False
    assert part_sql.move_hash(session.pk, 2, 2, STATE, claim) is False  # not where the hash is
    assert part_sql.move_hash(session.pk, 1, 1, STATE, claim) is True

    row = UploadSession.objects.get(pk=session.pk)
    assert (row.hashed_parts, bytes(row.hash_state), row.hash_claimed_until) == (1, STATE, None)
    assert part_sql.move_hash(session.pk, 1, 1, STATE, claim) is False  # once


def test_a_closed_session_keeps_its_hash_and_a_release_frees_only_its_own_claim(session):
    now = timezone.now()
    claim = now + timedelta(seconds=60)
    assert part_sql.claim_hash(session.pk, 1, now, claim)

    part_sql.release_hash(session.pk, claim + timedelta(seconds=1))  # another's token
    assert UploadSession.objects.get(pk=session.pk).hash_claimed_until == claim
    UploadSession.objects.filter(pk=session.pk).update(status="finalizing")
    assert part_sql.move_hash(session.pk, 1, 1, STATE, claim) is False
    part_sql.release_hash(session.pk, claim)
    assert UploadSession.objects.get(pk=session.pk).hash_claimed_until is None


def test_owned_session_is_the_owners_session_with_the_orms_fields(session, user, other_user):
    expected = UploadSession.objects.only(*PART_FIELDS).get(pk=session.pk)
    with CaptureQueriesContext(connection) as queries:
        found = part_sql.owned_session(str(session.pk), user.pk)
        read = {f: getattr(found, f) for f in PART_FIELDS}
    assert len(queries.captured_queries) == 1
    assert read == {f: getattr(expected, f) for f in PART_FIELDS}
    assert part_sql.owned_session(session.pk, other_user.pk) is None
    assert part_sql.owned_session(uuid.uuid4(), user.pk) is None
