"""The sections of the ``/status`` page: the health report (``build_status``) in words and
units, plus what each job did lately and which outbox events are stuck."""

import functools
from datetime import datetime

from django.urls import reverse
from django.utils import timezone

from portal.models import JobRun, OutboxEvent
from portal.services.jobs import JOB_SCHEDULES, OUTBOX_BACKLOG_WARN_AGE
from portal.services.status.units import ago, binary_size, duration, every, share

RECENT_RUNS = 10
FAILED_EVENTS_SHOWN = 10
STATE_MARKS = {"ok": "✔", "warning": "▲", "unavailable": "✖"}
EVENT_FIELDS = ("pk", "event_type", "aggregate_id", "attempts", "last_error", "updated_at")


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
    last_success = moment(figures.get("last_success_at"), now)
    if last_success is None:
        reason = (
            f"never succeeded; last run {runs[0].outcome}"
            if runs
            else "never ran: is the crontab installed?"
        )
    else:
        reason = f"last success {last_success['ago']}, expected {every(schedule)}"
    tail = ""
    if runs and runs[0].outcome == JobRun.Outcome.FAILED:
        tail = f"; the last run failed {ago((now - runs[0].started_at).total_seconds())}"
    return {
        "name": job,
        "state": state(figures["state"]),
        "reason": sentence(reason + tail),
        "reason_tail": sentence(tail),
        "last_success": last_success,
        "schedule": every(schedule),
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
        used_share=share(total - free, total),
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
