"""The figures behind the collector. Every query reads a bounded number of index entries
(one seek, or a count stopped at ``COUNT_CAP``), so a scrape costs the same with 10
thousand or 100 million rows (``bench/metrics.py``).
"""

import shutil
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.core.files.storage import storages
from django.db.models import F, Min, Q, Sum

from portal import storage
from portal.models import JobRun, OutboxEvent, UploadPart, UploadSession
from portal.storage import FINAL_ALIAS, TEMP_ALIAS

COUNT_CAP = 10_000
SUCCESS_OUTCOMES = (JobRun.Outcome.OK, JobRun.Outcome.PARTIAL)
FINISHED_OUTCOMES = tuple(o for o in JobRun.Outcome.values if o != JobRun.Outcome.RUNNING)
OUTBOX_COUNTED = (OutboxEvent.Status.PENDING, OutboxEvent.Status.SENDING, OutboxEvent.Status.FAILED)
SESSIONS_COUNTED = (
    UploadSession.Status.INIT,
    UploadSession.Status.IN_PROGRESS,
    UploadSession.Status.FINALIZING,
    UploadSession.Status.FAILED,
    UploadSession.Status.ABORTED,
)
# Items a job's last run handled: the metric's item label -> where its count sits in
# JobRun.counts (cleanup keeps counts per step, dispatch flat).
JOB_ITEMS = {
    "portal_cleanup": {
        "expired": ("stale", "sessions_expired"),
        "deleted": ("orphans", "objects_deleted"),
        "swept": ("sweep", "objects_deleted"),
        "pruned": ("prune", "sessions_pruned"),
        "events_pruned": ("prune", "outbox_events_pruned"),
    },
    "portal_finalize": {item: (item,) for item in ("completed", "failed", "busy", "errors")},
    "portal_dispatch": {
        item: (item,)
        for item in ("delivered", "retried", "gave_up", "requeued", "released", "lost_lease")
    },
}


@dataclass
class JobFigures:
    command: str
    last_run_at: datetime | None = None  # when the most recent finished run ended
    last_run_seconds: float | None = None
    last_outcome: str | None = None
    last_success_at: datetime | None = None
    running: bool = False
    items: dict[str, int] = field(default_factory=dict)


def outbox_counts():
    return {status: capped_count(OutboxEvent, status=status) for status in OUTBOX_COUNTED}


def session_counts():
    return {status: capped_count(UploadSession, status=status) for status in SESSIONS_COUNTED}


def capped_count(model, **filters):
    """Rows matching ``filters`` up to ``COUNT_CAP``; selecting the indexed column (not the
    primary key) lets the count be index-only."""
    return model.objects.filter(**filters).values("status")[:COUNT_CAP].count()


def _latest_run(command, outcome):
    return (
        JobRun.objects.filter(job=command, outcome=outcome)
        .order_by("-started_at")
        .values("started_at", "finished_at", "outcome", "counts")
        .first()
    )


def job_figures(command) -> JobFigures:
    """Latest run per outcome (one seek each on ``jobrun_job_outcome``), then combined."""
    latest = {outcome: _latest_run(command, outcome) for outcome in JobRun.Outcome.values}
    figures = JobFigures(command)
    finished = [latest[o] for o in FINISHED_OUTCOMES if latest[o] is not None]
    successes = [latest[o] for o in SUCCESS_OUTCOMES if latest[o] is not None]
    if successes:
        best = max(successes, key=lambda run: run["started_at"])
        figures.last_success_at = best["finished_at"] or best["started_at"]
    if finished:
        last = max(finished, key=lambda run: run["started_at"])
        ended = last["finished_at"] or last["started_at"]
        figures.last_run_at = ended
        figures.last_run_seconds = max((ended - last["started_at"]).total_seconds(), 0.0)
        figures.last_outcome = last["outcome"]
        figures.items = job_items(command, last["counts"])
    running = latest[JobRun.Outcome.RUNNING]
    figures.running = running is not None and (
        not finished or running["started_at"] > max(run["started_at"] for run in finished)
    )
    return figures


def job_items(command, counts):
    """The run's counts under the metric's item names; anything unreadable counts 0."""
    items = {}
    for item, path in JOB_ITEMS.get(command, {}).items():
        value = counts
        for step in path:
            value = value.get(step) if isinstance(value, dict) else None
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        items[item] = int(value) if is_number and value >= 0 else 0
    return items


def oldest_due_event_age(now):
    """Seconds since the earliest-due event became due: ``pending`` past ``next_attempt_at``
    or ``sending`` past its lease (0 when none is)."""
    due = (
        OutboxEvent.objects.filter(status=status, next_attempt_at__lte=now)
        for status in (OutboxEvent.Status.PENDING, OutboxEvent.Status.SENDING)
    )
    return _age_of_earliest(now, [_earliest(events, "next_attempt_at") for events in due])


def oldest_expired_open_session_age(now):
    """Seconds since the earliest open session's ``expires_at`` passed (0 when none has)."""
    expired = (
        UploadSession.objects.filter(status=status, expires_at__lt=now)
        for status in UploadSession.OPEN_STATUSES
    )
    return _age_of_earliest(now, [_earliest(sessions, "expires_at") for sessions in expired])


def stalled_assembly_age(now):
    """Seconds since the earliest ``finalizing`` session's assembly lease ran out (0: none)."""
    stalled = UploadSession.objects.filter(
        status=UploadSession.Status.FINALIZING, assembly_lease_until__lt=now
    )
    return _age_of_earliest(now, [_earliest(stalled, "assembly_lease_until")])


def open_reserved_bytes():
    """Bytes open sessions have declared and not received yet (over at most the cap)."""
    open_sessions = UploadSession.objects.filter(status__in=UploadSession.OPEN_STATUSES)
    total = UploadSession.objects.filter(pk__in=open_sessions.values("pk")[:COUNT_CAP]).aggregate(
        reserved=Sum(F("total_size_bytes") - F("bytes_received"))
    )["reserved"]
    return max(int(total or 0), 0)


def tracked_temp_objects():
    """Parts that still hold a temp object, counted on the partial index ``part_with_temp_key``."""
    return UploadPart.objects.exclude(temp_key="").values("session_id")[:COUNT_CAP].count()


def oldest_finished_session_with_temp_age(now):
    """Seconds since the earliest-finished session that still holds temp objects ended.

    The sessions come from the partial index first (at most the cap), then by primary
    key: the query never walks the history of finished sessions.
    """
    holding = (
        UploadPart.objects.exclude(temp_key="")
        .values("session_id")
        .order_by("session_id")
        .distinct()[:COUNT_CAP]
    )
    # The status goes into the aggregate's filter, not the WHERE clause: given a status
    # condition, SQLite walks the status index (all finished sessions) instead.
    finished = Q(status__in=UploadSession.TERMINAL_STATUSES)
    earliest = UploadSession.objects.filter(pk__in=holding).aggregate(
        earliest=Min("finished_at", filter=finished)
    )["earliest"]
    return _age(now, earliest) if earliest else 0.0


def _earliest(queryset, field):
    """The smallest ``field`` in ``queryset`` (None if empty): one index seek."""
    return queryset.order_by(field).values_list(field, flat=True).first()


def _age_of_earliest(now, moments):
    found = [moment for moment in moments if moment is not None]
    return _age(now, min(found)) if found else 0.0


def _age(now, then):
    return max((now - then).total_seconds(), 0.0)


@dataclass(frozen=True)
class DiskSpace:
    storage: str
    free_bytes: int
    size_bytes: int
    min_free_bytes: int


def local_disk_space():
    """Free and total bytes of each local storage root's filesystem (none on S3); a missing
    root is left out (``/ready`` reports it)."""
    space = []
    if not storage.backend().has_volumes:
        return space
    for alias in (TEMP_ALIAS, FINAL_ALIAS):
        try:
            usage = shutil.disk_usage(storages[alias].location)
        except OSError:
            continue
        space.append(DiskSpace(alias, usage.free, usage.total, settings.PORTAL_MIN_FREE_BYTES))
    return space
