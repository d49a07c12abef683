"""The ``/status`` page: the health report (``build_status``) in words and units, what each
job did lately, which outbox events are stuck, and the page's one change (a requeue)."""

import functools
import logging
import uuid
from datetime import datetime

from django.urls import reverse
from django.utils import timezone

from portal.models import JobRun, OutboxEvent
from portal.observability import log_event
from portal.services import outbox
from portal.services.errors import BadRequest, Conflict, NotFound
from portal.services.jobs import JOB_SCHEDULES, OUTBOX_BACKLOG_WARN_AGE

logger = logging.getLogger("portal.services.status")

RECENT_RUNS = 10
FAILED_EVENTS_SHOWN = 10
STATE_MARKS = {"ok": "✔", "warning": "▲", "unavailable": "✖"}
EVENT_FIELDS = ("pk", "event_type", "aggregate_id", "attempts", "last_error", "updated_at")
SIZE_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB")
DURATION_STEPS = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))


def binary_size(count):
    """``77921726464`` -> ``"72.6 GiB"``; below 1 KiB the exact byte count (``"1 byte"``)."""
    value = float(count)
    for unit in SIZE_UNITS:
        if abs(value) < 1024 or unit == SIZE_UNITS[-1]:
            break
        value /= 1024
    if unit == "bytes":
        return f"{int(count)} byte" if int(count) == 1 else f"{int(count)} bytes"
    return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"


def duration(seconds):
    """``0.42`` -> ``"420 ms"``, ``75`` -> ``"1 min 15 s"``, ``10800`` -> ``"3 h"``."""
    seconds = max(float(seconds), 0.0)
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    for index, (size, unit) in enumerate(DURATION_STEPS):
        if whole >= size:
            major, rest = divmod(whole, size)
            if major < 10 and index + 1 < len(DURATION_STEPS):
                minor_size, minor_unit = DURATION_STEPS[index + 1]
                minor = rest // minor_size
                if minor:
                    return f"{major} {unit} {minor} {minor_unit}"
            return f"{major} {unit}"
    return f"{whole} s"


def ago(seconds):
    """``12`` -> ``"12 s ago"``."""
    return "just now" if seconds < 1 else f"{duration(seconds)} ago"


def moment(at, now):
    """What a ``<time>`` element needs: the ISO time and how long ago it was."""
    if at is None:
        return None
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return {"iso": at.isoformat(), "ago": ago((now - at).total_seconds())}


def sentence(text):
    """``text`` ending in a full stop unless it ends in one already (or a question)."""
    return text if not text or text.endswith((".", "?", "!")) else f"{text}."


def state(name):
    """A state with its mark, so it reads without colour."""
    return {"name": name, "mark": STATE_MARKS.get(name, "?")}


def recent_runs(jobs, limit=RECENT_RUNS):
    """{job: its last ``limit`` runs, newest first}: one ``UNION ALL`` of a seek on
    ``jobrun_job_outcome`` per (job, outcome), where ordering a job's runs by time would
    walk past every other job's history."""
    found = {job: [] for job in jobs}
    if jobs:
        for run in JobRun.objects.raw(*recent_runs_sql(tuple(jobs), limit)):
            found[run.job].append(run)
    return {
        job: sorted(runs, key=lambda run: run.started_at, reverse=True)[:limit]
        for job, runs in found.items()
    }


@functools.cache
def recent_runs_sql(jobs, limit):
    """The statement of ``recent_runs`` and its parameters, compiled once per process."""
    parts, params = [], []
    for job in jobs:
        for outcome in JobRun.Outcome.values:
            latest = JobRun.objects.filter(job=job, outcome=outcome).order_by("-started_at")
            sql, part_params = latest[:limit].query.sql_with_params()
            # Django's own SQL; the values stay parameters.
            parts.append(f"SELECT * FROM ({sql}) AS r{len(parts)}")  # noqa: S608
            params += part_params
    return " UNION ALL ".join(parts), tuple(params)


def run_row(run, now):
    counts = dict(run.counts) if isinstance(run.counts, dict) else {}
    error = counts.pop("error", "")
    ended = run.finished_at
    return {
        "started": moment(run.started_at, now),
        "duration": duration((ended - run.started_at).total_seconds()) if ended else "—",
        "outcome": run.outcome,
        "counts": counts_text(counts),
        "host": run.host or "—",
        "error": str(error),
    }


def counts_text(counts, prefix=""):
    """``{"stale": {"expired": 2, "failed": 0}}`` -> ``"stale.expired 2"``."""
    parts = []
    for key, value in counts.items():
        if isinstance(value, dict):
            inner = counts_text(value, f"{prefix}{key}.")
            if inner != "nothing to do":
                parts.append(inner)
        elif value:
            parts.append(f"{prefix}{key} {value}")
    return ", ".join(parts) or "nothing to do"


def job_section(job, figures, runs, now):
    schedule = JOB_SCHEDULES[job].total_seconds()
    every = f"every {duration(schedule)}"
    last_success = moment(figures.get("last_success_at"), now)
    if last_success is None:
        reason = (
            f"never succeeded; last run {runs[0].outcome}"
            if runs
            else "never ran: is the crontab installed?"
        )
    else:
        reason = f"last success {last_success['ago']}, expected {every}"
    tail = ""
    if runs and runs[0].outcome == JobRun.Outcome.FAILED:
        tail = f"; the last run failed {ago((now - runs[0].started_at).total_seconds())}"
    return {
        "name": job,
        "state": state(figures["state"]),
        "reason": sentence(reason + tail),
        "reason_tail": sentence(tail),
        "last_success": last_success,
        "schedule": every,
        "warn_after": duration(2 * schedule),
        "runs": [run_row(run, now) for run in runs],
        "admin_url": f"{reverse('admin:portal_jobrun_changelist')}?job__exact={job}",
    }


def disk_section(alias, figures):
    free, total = figures.get("free_bytes"), figures.get("total_bytes")
    section = {"name": alias, "state": state(figures["state"]), "measured": free is not None}
    if free is None:
        section["reason"] = "the storage root is missing or unreadable."
        return section
    warn, refuse = figures["warn_below_bytes"], figures["refuse_new_uploads_below_bytes"]
    section.update(
        free=binary_size(free),
        total=binary_size(total),
        used_share=round(100 * (total - free) / total) if total else 0,
        warn_below=binary_size(warn) if warn else "off",
        refuse_below=binary_size(refuse) if refuse else "off (PORTAL_MIN_FREE_BYTES=0)",
    )
    if refuse and free < refuse:
        section["reason"] = "new uploads are refused: free space is below the limit."
    elif warn and free < warn:
        section["reason"] = "free space is below the warning level; new uploads stop soon."
    elif figures["state"] != "ok":
        section["reason"] = f"the volume is {section['used_share']} % used."
    else:
        section["reason"] = "enough free space."
    return section


def failed_events(limit=FAILED_EVENTS_SHOWN):
    """The failed events that gave up last: a backward seek on ``outbox_status_next``."""
    failed = OutboxEvent.objects.filter(status=OutboxEvent.Status.FAILED)
    return list(failed.order_by("-next_attempt_at").values(*EVENT_FIELDS)[:limit])


def outbox_section(figures, now):
    failed, pending = figures.get("failed") or 0, figures.get("pending") or 0
    oldest = figures.get("oldest_pending_age_seconds")
    if figures["state"] == "unavailable":
        reason = "the outbox could not be read: is the database up?"
    elif failed:
        reason = f"{failed} event(s) gave up: fix the runner, then requeue them below"
    elif oldest is not None and oldest > OUTBOX_BACKLOG_WARN_AGE.total_seconds():
        reason = (
            f"the oldest pending event waits for {duration(oldest)}: is portal_dispatch running?"
        )
    else:
        reason = "nothing stuck"
    events = [
        {**event, "id": str(event["pk"]), "updated": moment(event["updated_at"], now)}
        for event in (failed_events() if failed else [])
    ]
    return {
        "state": state(figures["state"]),
        "reason": sentence(reason),
        "pending": pending,
        "failed": failed,
        "oldest_pending": duration(oldest) if oldest is not None else "none pending",
        "failed_events": events,
    }


def page_context(report, *, user, now=None):
    """Everything the template renders, from the report and a bounded set of reads."""
    now = now or timezone.now()
    runs = recent_runs(list(report["jobs"]))
    outbox = outbox_section(report["outbox"], now)
    return {
        "report": report,
        "overall": state(report["status"]),
        "checks": [{"name": n, "state": state(s)} for n, s in report["checks"].items()],
        "jobs": [
            job_section(job, figures, runs[job], now) for job, figures in report["jobs"].items()
        ],
        "disks": [disk_section(alias, figures) for alias, figures in report["disk"].items()],
        "outbox": outbox,
        "can_requeue": bool(outbox["failed_events"]) and can_requeue(user),
        "now": moment(now, now),
    }


def can_requeue(user):
    """Staff with the change permission on outbox events; a monitoring token never."""
    return bool(
        user.is_authenticated and user.is_staff and user.has_perm("portal.change_outboxevent")
    )


def parse_event_id(raw):
    """The UUID of the form's ``event_id``; a clear 400 for anything else."""
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise BadRequest(
            "event_id must be an outbox event's UUID", code="invalid_event_id"
        ) from None


def requeue_event(event_id, *, user):
    """Make one ``failed`` event ``pending`` and due now; 404 or 409 when it cannot."""
    if outbox.requeue_failed(ids=[event_id]) == 1:
        log_event(
            logger,
            "outbox.requeued",
            f"outbox event requeued from /status by {user.get_username()}",
            event_id=str(event_id),
            user=user.get_username(),
        )
        return
    current = OutboxEvent.objects.filter(pk=event_id).values_list("status", flat=True).first()
    if current is None:
        raise NotFound("no outbox event has this id", code="event_not_found")
    raise Conflict(
        f"the event is {current}, not failed: nothing to requeue", code="event_not_failed"
    )
