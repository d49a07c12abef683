"""The statements every part upload runs, written once as SQL.

Profiled on a part upload (docs/upload-performance.md), Django built and compiled each of
these queries in 0.5-1 ms, and the database ran it in a few hundredths of that: with
eight to twelve of them a part, the ORM was most of what a part cost besides its bytes.
The statements here are plain SQL that SQLite and PostgreSQL both run, on the tables and
columns of ``portal.models``; values go in as the ORM would send them (the field's or
the backend's own conversion), and rows that become models come back through
``Manager.raw``, which converts columns as a queryset does. ``tests/test_part_sql.py``
runs every statement on real rows of both databases and reads the outcome back through
the ORM (the columns read and written, datetimes to the microsecond, the rows a
condition leaves alone); the part and catch-up tests run through them end to end.

Everything else keeps the ORM: only the statements of the part path (from the token
lookup, which every API request makes, to the count) and of the file-hash catch-up are
here, and each says which ORM query it replaces.
"""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.transaction import TransactionManagementError

from portal.lookups import one_or_none
from portal.models import ApiToken, UploadPart, UploadSession
from portal.parts import OPEN_STATUSES

SESSIONS = UploadSession._meta.db_table
TOKENS = ApiToken._meta.db_table
PARTS = UploadPart._meta.db_table
_IS_OPEN = f"status IN ({', '.join(['%s'] * len(OPEN_STATUSES))})"


@dataclass(frozen=True)
class RecordedPart:
    """What a replay compares and answers with."""

    part_number: int
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class WaitingPart:
    """A recorded part the file's hash has not taken in, and what the catch-up needs."""

    part_number: int
    size_bytes: int
    sha256: str
    temp_key: str


def session_pk(value):
    """A session id as the database stores it (a hex string on SQLite, a uuid elsewhere)."""
    return UploadSession._meta.pk.get_db_prep_value(value, connection)


def timestamp(value):
    """A datetime as the database stores it."""
    return connection.ops.adapt_datetimefield_value(value)


def _one(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _rows(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _count(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


# ---------------------------------------------------------------------------- the part path


def active_token(digest):
    """The active token whose ``key_hash`` is ``digest``, of an active user, or None; the
    token has its purpose, hash and last use, ``token.user`` its primary key and user name
    (its other fields load on access, as after ``only``). Was: ``select_related("user")
    .only(...).filter(key_hash=digest, is_active=True, user__is_active=True)``, which
    still serves a user model whose name or ``is_active`` is on a parent model's table."""
    user_model = get_user_model()
    meta, quote = user_model._meta, connection.ops.quote_name
    name, active = meta.get_field(user_model.USERNAME_FIELD), meta.get_field("is_active")
    if not _on_own_table(user_model, name, active):
        return _active_token_orm(digest, user_model)
    sql = (
        "SELECT t.id, t.purpose, t.key_hash, t.last_used_at, t.user_id,"
        f" u.{quote(name.column)} AS user_name FROM {TOKENS} t"
        f" INNER JOIN {quote(meta.db_table)} u ON u.{quote(meta.pk.column)} = t.user_id"
        f" WHERE t.key_hash = %s AND t.is_active = %s AND u.{quote(active.column)} = %s"
    )
    tokens = list(ApiToken.objects.raw(sql, [digest, True, True]))
    if not tokens:
        return None
    token = tokens[0]
    token.user = partial_instance(
        user_model, {meta.pk.attname: token.user_id, name.attname: token.user_name}
    )
    return token


def _on_own_table(model, *fields):
    """Whether ``fields`` are columns of ``model``'s own table (a proxy's: its concrete
    model's), not of a concrete parent's, which the ORM would join."""
    return all(field.model is model._meta.concrete_model for field in fields)


def _active_token_orm(digest, user_model):
    name = f"user__{user_model.USERNAME_FIELD}"
    tokens = (
        ApiToken.objects.select_related("user")
        .only("purpose", "key_hash", "last_used_at", "user", "user__is_active", name)
        .filter(key_hash=digest, is_active=True, user__is_active=True)
    )
    return one_or_none(tokens)


def partial_instance(model, values):
    """``model`` loaded with only ``values`` (``{attname: value}``, the rest deferred, as
    after ``only``). ``Model.from_db`` takes the values in the order of the model's
    fields, whatever order the names are given in."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    return model.from_db(connection.alias, names, [values[n] for n in names])


def owned_session(pk, owner_pk, fields):
    """Session ``pk`` of owner ``owner_pk`` with ``fields``, or None. Was:
    ``filter(pk=pk, owner=owner).only(*fields)``."""
    owner = UploadSession._meta.get_field("owner")
    owner_value = owner.get_db_prep_value(owner_pk, connection)
    return _session_row(f"id = %s AND {owner.column} = %s", [session_pk(pk), owner_value], fields)


def _session_row(where, params, fields, lock=""):
    columns = ", ".join(["id", *(UploadSession._meta.get_field(f).column for f in fields)])
    rows = list(
        UploadSession.objects.raw(f"SELECT {columns} FROM {SESSIONS} WHERE {where}{lock}", params)
    )
    return rows[0] if rows else None


def range_state(pk, part_number):
    """``(status, whether part ``part_number`` is recorded)``, ``(None, False)`` for no
    session. Was: the session's status annotated with ``Exists`` of the part."""
    row = _one(
        f"SELECT s.status, EXISTS(SELECT 1 FROM {PARTS} p"
        f" WHERE p.session_id = s.id AND p.part_number = %s) FROM {SESSIONS} s WHERE s.id = %s",
        [part_number, session_pk(pk)],
    )
    return (row[0], bool(row[1])) if row else (None, False)


def lock_session(pk, fields):
    """The session row with ``fields``, locked until the transaction ends (``FOR UPDATE``
    where the database has row locks; SQLite's write transaction holds the whole file).
    Was: ``select_for_update().only(*fields).get(pk=pk)``; None for no such row."""
    if connection.get_autocommit():
        raise TransactionManagementError("lock_session outside a transaction locks nothing")
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return _session_row("id = %s", [session_pk(pk)], fields, lock)


def recorded_parts(pk, numbers):
    """``{part number: RecordedPart}`` of those of ``numbers`` that are recorded. Was:
    ``UploadPart.objects.filter(session_id=pk, part_number__in=numbers).only(...)``."""
    numbers = sorted(numbers)
    marks = ", ".join(["%s"] * len(numbers))
    rows = _rows(
        f"SELECT part_number, size_bytes, sha256 FROM {PARTS}"
        f" WHERE session_id = %s AND part_number IN ({marks})",
        [session_pk(pk), *numbers],
    )
    return {row[0]: RecordedPart(*row) for row in rows}


def insert_part(pk, part_number, stored, now):
    """Record a part (``stored``: its key, size, sha256 and md5). Was:
    ``UploadPart.objects.create(...)``; the unique constraint raises ``IntegrityError``."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {PARTS} (session_id, part_number, size_bytes, sha256, temp_key, md5,"
            " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                session_pk(pk),
                part_number,
                stored.size,
                stored.sha256,
                stored.key,
                stored.md5,
                timestamp(now),
            ],
        )


def count_part(pk, size, *, expires_at, now, hashed=None):
    """Count a recorded part on its session, which is in progress from now on, and
    extend its life; ``hashed``: ``{"hashed_parts": n, "hash_state": bytes}`` to save
    with it. Was: ``filter(pk=pk).update(completed_parts=F(...) + 1, ...)``."""
    sets = [
        "completed_parts = completed_parts + 1",
        "bytes_received = bytes_received + %s",
        "status = %s",
        "expires_at = %s",
        "updated_at = %s",
    ]
    params = [size, str(UploadSession.Status.IN_PROGRESS), timestamp(expires_at), timestamp(now)]
    if hashed:
        sets += ["hashed_parts = %s", "hash_state = %s"]
        params += [hashed["hashed_parts"], bytes(hashed["hash_state"])]
    _count(
        f"UPDATE {SESSIONS} SET {', '.join(sets)} WHERE id = %s",
        [*params, session_pk(pk)],
    )


# ---------------------------------------------------------------------------- the catch-up


def waiting_parts(pk, limit, now):
    """``(session, held, [WaitingPart, ...])`` for an open session: the recorded parts
    (holding a temp object) after those its saved hash covers, in order, at most
    ``limit``; ``session`` carries what ``filehash.for_part`` reads, ``held`` whether a
    catch-up claim runs past ``now``. None when there are none. Was: the parts joined to
    their session, ``part_number__gt=F("session__hashed_parts")``, ordered."""
    rows = _rows(
        "SELECT s.hashed_parts, s.hash_state, s.chunk_size_bytes, s.total_size_bytes,"
        " s.total_parts, CASE WHEN s.hash_claimed_until >= %s THEN 1 ELSE 0 END,"
        " p.part_number, p.size_bytes, p.sha256, p.temp_key"
        f" FROM {PARTS} p INNER JOIN {SESSIONS} s ON p.session_id = s.id"
        f" WHERE p.session_id = %s AND s.{_IS_OPEN} AND p.part_number > s.hashed_parts"
        " AND p.temp_key <> '' ORDER BY p.part_number LIMIT %s",
        [timestamp(now), session_pk(pk), *OPEN_STATUSES, limit],
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
    and no claim runs past ``now``: whether it was taken. Was: a conditional ``update``."""
    return bool(
        _count(
            f"UPDATE {SESSIONS} SET hash_claimed_until = %s WHERE id = %s"
            " AND hashed_parts = %s AND (hash_claimed_until IS NULL OR hash_claimed_until < %s)",
            [timestamp(until), session_pk(pk), first - 1, timestamp(now)],
        )
    )


def move_hash(pk, first, last, state, claim):
    """Move the saved hash from before part ``first`` to after part ``last`` (``state``)
    and let go of ``claim`` in the same statement, if the session is open and ``claim``
    is still held: whether it moved. Was: a conditional ``update``."""
    return bool(
        _count(
            f"UPDATE {SESSIONS} SET hash_claimed_until = NULL, hashed_parts = %s,"
            f" hash_state = %s WHERE id = %s AND hashed_parts = %s AND {_IS_OPEN}"
            " AND hash_claimed_until = %s",
            [last, bytes(state), session_pk(pk), first - 1, *OPEN_STATUSES, timestamp(claim)],
        )
    )


def release_hash(pk, claim):
    """Let go of ``claim`` unless it ran out and another request holds the session now."""
    _count(
        f"UPDATE {SESSIONS} SET hash_claimed_until = NULL"
        " WHERE id = %s AND hash_claimed_until = %s",
        [session_pk(pk), timestamp(claim)],
    )
