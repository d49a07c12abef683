"""The hash catch-up's claim statements of ``portal.services.part_sql`` at their exact
tokens: a request lets go of its own claim only, never of a later one another request
took after its own ran out (SQLite, and PostgreSQL with DATABASE_URL)."""

from datetime import timedelta

from django.utils import timezone

from portal.models import UploadSession
from portal.services import part_sql
from tests.part_sql_helpers import session, sessions  # noqa: F401  (fixtures)


def claimed_until(session_pk):
    return UploadSession.objects.get(pk=session_pk).hash_claimed_until


def test_releasing_an_older_claim_leaves_the_newer_claim_in_place(session):  # noqa: F811
    """A request whose claim ran out releases with its old token: the claim another
    request took since (a later time) must stay, or two requests hash the same parts."""
    now = timezone.now().replace(microsecond=123456)
    old = now + timedelta(seconds=60)
    assert part_sql.claim_hash(session.pk, 1, now, old)
    newer = old + timedelta(seconds=90)
    assert part_sql.claim_hash(session.pk, 1, old + timedelta(microseconds=1), newer)

    part_sql.release_hash(session.pk, old)
    assert claimed_until(session.pk) == newer
    part_sql.release_hash(session.pk, newer - timedelta(microseconds=1))
    assert claimed_until(session.pk) == newer

    part_sql.release_hash(session.pk, newer)
    assert claimed_until(session.pk) is None


def test_the_hash_moves_over_several_parts_at_once(session):  # noqa: F811
    """A catch-up over parts 2-3: the hash must wait for part 2 (``first``) and end up
    after part 3 (``last``), not after ``first``, which would hash part 3 twice."""
    state = bytes(range(40, 152))
    UploadSession.objects.filter(pk=session.pk).update(hashed_parts=1)
    now = timezone.now().replace(microsecond=314159)
    claim = now + timedelta(seconds=60)
    assert part_sql.claim_hash(session.pk, 2, now, claim)

    assert part_sql.move_hash(session.pk, 3, 3, state, claim) is False  # waits for part 2
    assert part_sql.move_hash(session.pk, 2, 3, state, claim) is True

    row = UploadSession.objects.get(pk=session.pk)
    assert (row.hashed_parts, bytes(row.hash_state), row.hash_claimed_until) == (3, state, None)


def test_a_live_claim_that_ends_before_the_new_one_is_not_taken_over(session):  # noqa: F811
    """A claim still running at ``now`` holds the session even if it ends before the claim
    asked for: comparing with the new end instead of ``now`` would let two requests hash."""
    now = timezone.now().replace(microsecond=271828)
    live = now + timedelta(seconds=30)
    assert part_sql.claim_hash(session.pk, 1, now - timedelta(seconds=30), live)

    assert part_sql.claim_hash(session.pk, 1, now, now + timedelta(seconds=60)) is False
    assert claimed_until(session.pk) == live
