"""The scrape-time collector: job, outbox and session figures live in the database (cron
jobs are short-lived processes), so they are read when Prometheus asks, cached a few
seconds. A database error does not fail the scrape: ``portal_metrics_database_up`` reads 0.
"""

import logging
import threading
import time

from django.db import DatabaseError
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

from portal.health.executor import ResultCache
from portal.metrics import figures as fig
from portal.metrics import multiproc
from portal.services.jobs import JOB_SCHEDULES

logger = logging.getLogger("portal.metrics")
CACHE_SECONDS = 5.0


def scrape_registry():
    """A fresh registry for one scrape: every worker's instruments (the shared files under
    gunicorn, else this process's registry) plus the database figures."""
    registry = CollectorRegistry()
    path = multiproc.active_directory()
    if path:
        multiproc.locked_collector(registry, path)
    else:
        registry.register(ThisProcess())
    registry.register(collector)
    return registry


class ThisProcess:
    def collect(self):
        return REGISTRY.collect()


class PortalCollector:
    """Database and disk figures, read at most once per ``CACHE_SECONDS`` per process."""

    def __init__(self, cache_seconds=CACHE_SECONDS):
        self.cache_seconds = cache_seconds
        self.cache = ResultCache()
        self._lock = threading.Lock()

    def collect(self):
        with self._lock:
            families = self.cache.get("families", self.cache_seconds)
            if families is None:
                families = list(self.read())
                self.cache.put("families", families)
            return list(families)

    def clear(self):
        self.cache.clear()

    def read(self):
        started = time.perf_counter()
        try:
            families = list(database_families(timezone.now()))
        except DatabaseError as exc:
            logger.warning("metrics: cannot read the database figures: %s", type(exc).__name__)
            families = None
        yield from database_status(families is not None, time.perf_counter() - started)
        yield from families or ()
        yield from disk_families(fig.local_disk_space())


def database_families(now):
    yield from job_families([fig.job_figures(command) for command in JOB_SCHEDULES])
    yield from outbox_families(now)
    yield from session_families(now)


def _gauge(name, documentation, labels=(), samples=()):
    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    for label_values, value in samples:
        family.add_metric(list(label_values), value)
    return family


def database_status(ok, seconds):
    yield _gauge(
        "portal_metrics_database_up",
        "1 when this scrape read the job, outbox and session figures from the database.",
        samples=[((), 1 if ok else 0)],
    )
    yield _gauge(
        "portal_metrics_database_query_seconds",
        "How long reading the database figures took (they are reused for a few seconds).",
        samples=[((), seconds)],
    )
    yield _gauge(
        "portal_metrics_count_cap",
        "Counts stop here: a count equal to this value means at least this many.",
        samples=[((), fig.COUNT_CAP)],
    )


def job_families(jobs):
    label = ("command",)
    yield _gauge(
        "portal_job_interval_seconds",
        "How often cron is expected to run the job.",
        label,
        [((c,), s.total_seconds()) for c, s in JOB_SCHEDULES.items()],
    )
    yield _gauge(
        "portal_job_last_run_timestamp_seconds",
        "When the job's most recent finished run ended (Unix time); absent before the first.",
        label,
        [((j.command,), j.last_run_at.timestamp()) for j in jobs if j.last_run_at],
    )
    yield _gauge(
        "portal_job_last_success_timestamp_seconds",
        "When the job's most recent ok or partial run ended (Unix time); 0 if none ever did.",
        label,
        [((j.command,), j.last_success_at.timestamp() if j.last_success_at else 0) for j in jobs],
    )
    yield _gauge(
        "portal_job_last_run_duration_seconds",
        "How long the job's most recent finished run took.",
        label,
        [((j.command,), j.last_run_seconds) for j in jobs if j.last_run_seconds is not None],
    )
    yield _gauge(
        "portal_job_last_run_outcome",
        "1 for the outcome of the job's most recent finished run, 0 for the other outcomes.",
        ("command", "outcome"),
        [
            ((j.command, outcome), 1 if j.last_outcome == outcome else 0)
            for j in jobs
            if j.last_outcome
            for outcome in fig.FINISHED_OUTCOMES
        ],
    )
    yield _gauge(
        "portal_job_last_run_items",
        "Items the job's most recent finished run handled, by kind.",
        ("command", "item"),
        [((j.command, item), count) for j in jobs for item, count in j.items.items()],
    )
    yield _gauge(
        "portal_job_running",
        "1 while a run of the job has started after its most recent finished run.",
        label,
        [((j.command,), 1 if j.running else 0) for j in jobs],
    )


def outbox_families(now):
    yield _gauge(
        "portal_outbox_events",
        "Outbox events by status (pending, sending, failed), counted up to the count cap.",
        ("status",),
        [((status,), count) for status, count in fig.outbox_counts().items()],
    )
    yield _gauge(
        "portal_outbox_oldest_due_age_seconds",
        "How long the earliest-due outbox event has been due without being sent (0: none).",
        samples=[((), fig.oldest_due_event_age(now))],
    )


def session_families(now):
    yield _gauge(
        "portal_upload_sessions",
        "Upload sessions by status (init, in_progress, finalizing, failed, aborted), up to "
        "the count cap.",
        ("status",),
        [((status,), count) for status, count in fig.session_counts().items()],
    )
    yield _gauge(
        "portal_upload_sessions_oldest_expired_age_seconds",
        "How long ago the earliest still-open session expired (0: none is past expiry).",
        samples=[((), fig.oldest_expired_open_session_age(now))],
    )
    yield _gauge(
        "portal_upload_assembly_stalled_age_seconds",
        "How long ago the earliest finalizing session's assembly lease ran out (0: none).",
        samples=[((), fig.stalled_assembly_age(now))],
    )
    yield _gauge(
        "portal_upload_open_reserved_bytes",
        "Bytes that open upload sessions have declared and not sent yet.",
        samples=[((), fig.open_reserved_bytes())],
    )
    yield _gauge(
        "portal_upload_temp_objects",
        "Temp objects tracked by part rows (parts not yet reclaimed), up to the count cap.",
        samples=[((), fig.tracked_temp_objects())],
    )
    yield _gauge(
        "portal_upload_temp_objects_oldest_finished_age_seconds",
        "How long ago the earliest-finished session that still holds temp objects ended.",
        samples=[((), fig.oldest_finished_session_with_temp_age(now))],
    )


def disk_families(space):
    label = ("storage",)
    yield _gauge(
        "portal_storage_free_bytes",
        "Bytes available to the portal on the filesystem of a local storage root.",
        label,
        [((s.storage,), s.free_bytes) for s in space],
    )
    yield _gauge(
        "portal_storage_size_bytes",
        "Total bytes of the filesystem of a local storage root.",
        label,
        [((s.storage,), s.size_bytes) for s in space],
    )
    yield _gauge(
        "portal_storage_min_free_bytes",
        "PORTAL_MIN_FREE_BYTES: below this free, new upload sessions are refused (0: off).",
        label,
        [((s.storage,), s.min_free_bytes) for s in space],
    )


collector = PortalCollector()
