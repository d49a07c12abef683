"""The part path's and the hash catch-up's statements, as SQL both databases run: built by
the ORM each cost 0.5-1 ms of CPU (docs/design.md, "How an upload works")."""

from dataclasses import dataclass
from types import SimpleNamespace

from django.db import connection
from django.db.transaction import TransactionManagementError

from portal.models import UploadPart, UploadSession
from portal.parts import OPEN_STATUSES


def names(model):
    """``(table, columns)`` of ``model``, quoted: ``columns.<field name>`` is the field's
    column (a foreign key's ``..._id``)."""
    quote = connection.ops.quote_name
    columns = {field.name: quote(field.column) for field in model._meta.concrete_fields}
    return quote(model._meta.db_table), SimpleNamespace(**columns)


SESSIONS, S = names(UploadSession)
PARTS, P = names(UploadPart)
_IS_OPEN = f"{S.status} IN ({', '.join(['%s'] * len(OPEN_STATUSES))})"
# What the part path reads of its session; the rest of the row is not selected.
PART_FIELDS = (
    "status",
    "expires_at",
    "chunk_size_bytes",
    "total_size_bytes",
    "total_parts",
    "completed_parts",
    "hashed_parts",
    "hash_state",
)


@dataclass(frozen=True)
class WaitingPart:
    """A recorded part the file's hash has not taken in, and what the catch-up needs."""

    part_number: int
    size_bytes: int
    sha256: str
    temp_key: str
    temp_offset: int | None


def session_pk(value):
    """A session id as the database stores it (a hex string on SQLite, a uuid elsewhere)."""
    return UploadSession._meta.pk.get_db_prep_value(value, connection)


def timestamp(value):
    """A datetime as the database stores it."""
    return connection.ops.adapt_datetimefield_value(value)


def _run(sql, params, fetch=None):
    """``fetch``: ``"fetchone"`` or ``"fetchall"``; else the count of rows changed."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return getattr(cursor, fetch)() if fetch else cursor.rowcount


def owned_session(pk, owner_pk):
    """Session ``pk`` of owner ``owner_pk`` with ``PART_FIELDS``, or None."""
    owner = UploadSession._meta.get_field("owner").get_db_prep_value(owner_pk, connection)
    return _session_row(f"WHERE s.{S.owner} = %s AND", [owner], pk)


def _session_row(where, params, pk, extra="", lock=""):
    columns = ", ".join(f"s.{getattr(S, field)}" for field in ("id", *PART_FIELDS))
    sql = f"SELECT {columns}{extra} FROM {SESSIONS} s {where} s.{S.id} = %s{lock}"
    rows = list(UploadSession.objects.raw(sql, [*params, session_pk(pk)]))
    return rows[0] if rows else None


def range_state(pk, part_number):
    """``(status, whether part ``part_number`` is recorded)``; ``(None, False)``: no session."""
    row = _run(
        f"SELECT s.{S.status}, EXISTS(SELECT 1 FROM {PARTS} p WHERE p.{P.session} = s.{S.id}"
        f" AND p.{P.part_number} = %s) FROM {SESSIONS} s WHERE s.{S.id} = %s",
        [part_number, session_pk(pk)],
        "fetchone",
    )
    return (row[0], bool(row[1])) if row else (None, False)


def lock_session(pk):
    """The session row (or None), locked until the transaction ends (SQLite's write
    transaction holds the whole file)."""
    if connection.get_autocommit():
        raise TransactionManagementError("lock_session outside a transaction locks nothing")
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return _session_row("WHERE", [], pk, lock=lock)


def counted_session(pk):
    """The session after ``count_part``, whose UPDATE holds the row, and ``hash_next_in``:
    whether the part the saved hash needs is recorded. A read of its own, not subqueries of
    a locking SELECT: one that waited sees the parts of its first snapshot on PostgreSQL."""
    extra = (
        f", EXISTS(SELECT 1 FROM {PARTS} p WHERE p.{P.session} = s.{S.id}"
        f" AND p.{P.part_number} = s.{S.hashed_parts} + 1) AS hash_next_in"
    )
    return _session_row("WHERE", [], pk, extra)


def insert_part(pk, part_number, stored, now):
    """Record a part: False when it is recorded already (the unique constraint holds)."""
    values = {
        P.session: session_pk(pk),
        P.part_number: part_number,
        P.size_bytes: stored.size,
        P.sha256: stored.sha256,
        P.temp_key: stored.key,
        P.temp_offset: stored.offset,
        P.md5: stored.md5,
        P.created_at: timestamp(now),
    }
    marks = ", ".join(["%s"] * len(values))
    return bool(
        _run(
            f"INSERT INTO {PARTS} ({', '.join(values)}) VALUES ({marks})"
            f" ON CONFLICT ({P.session}, {P.part_number}) DO NOTHING",
            list(values.values()),
        )
    )


def count_part(pk, size, *, expires_at, now, hashed=None):
    """Count a recorded part on its session if it is open and not expired (in progress from
    now on, its life extended): whether it was. ``hashed``: ``(n, state)``, the file hash
    after part ``n``, saved if the saved hash still waits for that part."""
    sets = [
        f"{S.completed_parts} = {S.completed_parts} + 1",
        f"{S.bytes_received} = {S.bytes_received} + %s",
        f"{S.status} = %s",
        f"{S.expires_at} = %s",
        f"{S.updated_at} = %s",
    ]
    params = [size, str(UploadSession.Status.IN_PROGRESS), timestamp(expires_at), timestamp(now)]
    if hashed:
        number, state = hashed
        waits = f"CASE WHEN {S.hashed_parts} = %s THEN %s ELSE"
        sets += [f"{S.hashed_parts} = {waits} {S.hashed_parts} END"]
        sets += [f"{S.hash_state} = {waits} {S.hash_state} END"]
        params += [number - 1, number, number - 1, bytes(state)]
    return bool(
        _run(
            f"UPDATE {SESSIONS} SET {', '.join(sets)}"
            f" WHERE {S.id} = %s AND {_IS_OPEN} AND {S.expires_at} > %s",
            [*params, session_pk(pk), *OPEN_STATUSES, timestamp(now)],
        )
    )


def waiting_parts(pk, limit, now):
    """``(session, held, [WaitingPart, ...])`` for an open session: at most ``limit``
    recorded parts after those its saved hash covers, in order; ``session`` carries what
    ``filehash.for_part`` reads, ``held`` whether a claim runs past ``now``. Else None."""
    rows = _run(
        f"SELECT s.{S.hashed_parts}, s.{S.hash_state}, s.{S.chunk_size_bytes},"
        f" s.{S.total_size_bytes}, s.{S.total_parts},"
        f" CASE WHEN s.{S.hash_claimed_until} >= %s THEN 1 ELSE 0 END,"
        f" p.{P.part_number}, p.{P.size_bytes}, p.{P.sha256}, p.{P.temp_key},"
        f" p.{P.temp_offset}"
        f" FROM {PARTS} p INNER JOIN {SESSIONS} s ON p.{P.session} = s.{S.id}"
        f" WHERE p.{P.session} = %s AND s.{_IS_OPEN} AND p.{P.part_number} > s.{S.hashed_parts}"
        f" AND p.{P.temp_key} <> '' ORDER BY p.{P.part_number} LIMIT %s",
        [timestamp(now), session_pk(pk), *OPEN_STATUSES, limit],
        "fetchall",
    )
    if not rows:
        return None
    hashed, state, chunk, total, parts, held = rows[0][:6]
    session = UploadSession(
        pk=pk,
        hashed_parts=hashed,
        hash_state=state,
        chunk_size_bytes=chunk,
        total_size_bytes=total,
        total_parts=parts,
    )
    return session, bool(held), [WaitingPart(*row[6:]) for row in rows]


def claim_hash(pk, first, now, until):
    """Take the catch-up claim (until ``until``) while the hash waits for part ``first``
    and no claim runs past ``now``: whether it was taken."""
    claim = S.hash_claimed_until
    return bool(
        _run(
            f"UPDATE {SESSIONS} SET {claim} = %s WHERE {S.id} = %s AND {S.hashed_parts} = %s"
            f" AND ({claim} IS NULL OR {claim} < %s)",
            [timestamp(until), session_pk(pk), first - 1, timestamp(now)],
        )
    )


def move_hash(pk, first, last, state, claim):
    """Move the saved hash from before part ``first`` to after part ``last`` (``state``)
    and let go of ``claim`` in the same statement, if the session is open and ``claim``
    is still held: whether it moved."""
    return bool(
        _run(
            f"UPDATE {SESSIONS} SET {S.hash_claimed_until} = NULL, {S.hashed_parts} = %s,"
            f" {S.hash_state} = %s WHERE {S.id} = %s AND {S.hashed_parts} = %s"
            f" AND {_IS_OPEN} AND {S.hash_claimed_until} = %s",
            [last, bytes(state), session_pk(pk), first - 1, *OPEN_STATUSES, timestamp(claim)],
        )
    )


def release_hash(pk, claim):
    """Let go of ``claim`` unless it ran out and another request holds the session now."""
    _run(
        f"UPDATE {SESSIONS} SET {S.hash_claimed_until} = NULL"
        f" WHERE {S.id} = %s AND {S.hash_claimed_until} = %s",
        [session_pk(pk), timestamp(claim)],
    )
