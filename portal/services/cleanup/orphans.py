"""Step ``orphans``: temp objects of terminal sessions' parts go, then their ``temp_key``;
candidates by keyset over ``part_with_temp_key``, so any planner reads one batch a query."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from django.db import transaction
from django.db.models import Q

from portal import storage
from portal.models import UploadPart, UploadSession
from portal.services.cleanup.base import CleanupOptions, StepRun, count_deletion


def cleanup_orphan_temp_parts(options: CleanupOptions | None = None) -> StepRun:
    """Clear the ``temp_key`` of what was deleted; the rest stay tracked for the next run.
    A dry run also counts the parts of sessions ``stale`` would expire."""
    run = StepRun("orphans", options, counts=("sessions", "objects_deleted", "delete_requests"))
    pending: list[tuple[int, str]] = []
    counted = in_flight = None  # counted: the last session, which may go on in the next page
    with ThreadPoolExecutor(1, thread_name_prefix="portal-release") as pool:
        for rows in _parts_holding_temp_keys(run):
            terminal = _terminal_sessions({session_id for session_id, _, _ in rows}, run)
            run.add("sessions", len(terminal - {counted}))
            counted = rows[-1][0]
            pending.extend((pk, key) for session_id, pk, key in rows if session_id in terminal)
            while len(pending) >= run.batch_size:
                in_flight = _release(pending[: run.batch_size], run, pool, in_flight)
                del pending[: run.batch_size]
            if run.stop_requested():
                break
        if pending:
            in_flight = _release(pending, run, pool, in_flight)
        _clear_keys(in_flight, run)  # not on an error: the keys stay, the next run retries
    return run.finish()


def _parts_holding_temp_keys(run) -> Iterator[list[tuple]]:
    """(session_id, pk, temp_key) of parts with a temp key, whole sessions per batch (one
    that alone fills a batch page by page)."""
    holding = UploadPart.objects.exclude(temp_key="")
    last = None
    while True:
        query = holding if last is None else holding.filter(session_id__gt=last)
        rows = list(
            query.order_by("session_id").values_list("session_id", "pk", "temp_key")[
                : run.batch_size
            ]
        )
        if not rows:
            return
        last = rows[-1][0]
        if len(rows) == run.batch_size:
            whole = [row for row in rows if row[0] != last]
            if whole:
                last = whole[-1][0]
                yield whole
                continue
            yield from _parts_of_one_session(holding.filter(session_id=last), run)
            continue
        yield rows


def _parts_of_one_session(parts, run) -> Iterator[list[tuple]]:
    """A session with more keyed parts than a batch: its parts by primary-key keyset."""
    last_pk = 0
    while rows := list(
        parts.filter(pk__gt=last_pk)
        .order_by("pk")
        .values_list("session_id", "pk", "temp_key")[: run.batch_size]
    ):
        last_pk = rows[-1][1]
        yield rows


def _terminal_sessions(session_ids, run) -> set:
    """The ids among ``session_ids`` of terminal sessions (dry run: or ones it would expire)."""
    ended = Q(status__in=UploadSession.TERMINAL_STATUSES)
    if run.dry_run:
        ended |= Q(status__in=UploadSession.OPEN_STATUSES, expires_at__lt=run.now)
    sessions = UploadSession.objects.filter(ended, pk__in=session_ids)
    return set(sessions.values_list("pk", flat=True))


def _release(parts, run, pool, in_flight):
    """Delete the objects of ``parts`` in ``pool``, overlapping the previous batch's
    database work; what the caller hands to ``_clear_keys`` once it is done."""
    if run.dry_run:
        run.add("objects_deleted", len(parts))
        run.batch_done()
        return None
    by_key = {}  # a session's parts share its assembly file
    for pk, key in parts:
        by_key.setdefault(key, []).append(pk)
    deleting = pool.submit(storage.delete_temp, list(by_key))
    _clear_keys(in_flight, run)
    return by_key, deleting


def _clear_keys(in_flight, run):
    """Once a deletion is done, clear the keys of exactly what is gone."""
    if in_flight is None:
        return
    by_key, deleting = in_flight
    outcome = count_deletion(deleting.result(), run)
    gone = [pk for key in outcome.deleted for pk in by_key[key]]
    if gone:
        with transaction.atomic():
            UploadPart.objects.filter(pk__in=gone).update(temp_key="")
    run.batch_done()
