"""The django-health-check checks behind ``/ready`` (database, storages) and ``/status``
(adds job heartbeats, outbox backlog, free space: these only warn)."""

import dataclasses
import errno
from datetime import timedelta

import psutil
from django.conf import settings
from django.core.files.storage import storages
from django.db import DatabaseError
from django.db.models import Count, Min
from django.utils import timezone
from health_check import checks as hc_checks
from health_check.base import HealthCheck
from health_check.contrib.psutil import Disk
from health_check.exceptions import HealthCheckException, ServiceUnavailable, ServiceWarning

from portal import storage
from portal.models import JobRun, OutboxEvent
from portal.services.jobs import JOB_SCHEDULES, OUTBOX_BACKLOG_WARN_AGE

# The library waits ``timeout + 1`` s for a check: ``T - margin`` keeps the answer in T + 1 s.
RENDER_MARGIN_SECONDS = 0.25


class PortalTimeout:
    """The check budget is ``PORTAL_HEALTH_CHECK_TIMEOUT_SECONDS`` (read per probe)."""

    @property
    def timeout(self):
        seconds = settings.PORTAL_HEALTH_CHECK_TIMEOUT_SECONDS
        return timedelta(seconds=max(seconds - RENDER_MARGIN_SECONDS, seconds / 2))


@dataclasses.dataclass
class DatabaseReady(PortalTimeout, hc_checks.Database):
    """The library's ``SELECT 1``. A pass opens this process's database gate
    (``portal.dbgate``): once ``/ready`` says the database answers, no request may still
    get the gate's 503."""

    @property
    def name(self):
        return "database" if self.alias == "default" else f"database:{self.alias}"

    def run(self):
        super().run()
        if self.alias == "default":
            from portal import dbgate  # the gate answers with the API's errors: load it late

            dbgate.gate.succeeded()


class StorageFull(ServiceWarning):
    """The write test failed only for lack of room: reads, finalize by link and aborts still
    work, so ``/ready`` says ``full`` and stays 200 (docs/configuration.md, "Free space")."""


NO_ROOM = (errno.ENOSPC, errno.EDQUOT)


@dataclasses.dataclass
class StorageReady(PortalTimeout, hc_checks.Storage):
    """The library's write, read and delete of a small object; any backend error is
    "unavailable" (not the library's logged "unknown error"), no room is ``StorageFull``."""

    @property
    def name(self):
        return f"storage:{self.alias}"

    def run(self):
        try:
            super().run()
        except HealthCheckException:
            raise
        except Exception as exc:
            if _no_room(exc):
                raise StorageFull(f"storage {self.alias} is full") from exc
            raise ServiceUnavailable(f"{type(exc).__name__} on storage {self.alias}") from exc


def _no_room(exc):
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno in NO_ROOM:
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


@dataclasses.dataclass
class StatusCheck(PortalTimeout, HealthCheck):
    """A ``/status`` check: ``figures`` holds what the page shows. Async, so its queries run
    on the request's thread, never in the shared probe pool."""

    figures: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    async def run(self):
        try:
            await self.measure()
        except DatabaseError as exc:
            raise ServiceUnavailable(f"{type(exc).__name__} from the database") from exc


@dataclasses.dataclass
class JobFreshness(StatusCheck):
    """Warn when the last ``ok`` or ``partial`` run of ``job`` is older than twice its
    schedule."""

    job: str = "portal_cleanup"

    @property
    def name(self):
        return f"job:{self.job}"

    async def measure(self):
        last = await (
            JobRun.objects.filter(
                job=self.job, outcome__in=[JobRun.Outcome.OK, JobRun.Outcome.PARTIAL]
            )
            .order_by("-started_at")
            .afirst()
        )
        max_age = 2 * JOB_SCHEDULES[self.job].total_seconds()
        at = (last.finished_at or last.started_at) if last else None
        age = (timezone.now() - at).total_seconds() if at else None
        self.figures = {
            "last_success_at": at.isoformat() if at else None,
            "age_seconds": round(age) if age is not None else None,
            "max_age_seconds": round(max_age),
        }
        if at is None:
            raise ServiceWarning(f"{self.job} has never completed")
        if age > max_age:
            raise ServiceWarning(f"{self.job} last completed {round(age)} s ago")


@dataclasses.dataclass
class OutboxBacklog(StatusCheck):
    """Pending count, oldest pending age and failed count; warns on failed or old events."""

    @property
    def name(self):
        return "outbox"

    async def measure(self):
        pending = await OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING).aaggregate(
            count=Count("pk"), oldest=Min("created_at")
        )
        failed = await OutboxEvent.objects.filter(status=OutboxEvent.Status.FAILED).acount()
        oldest = pending["oldest"]
        age = (timezone.now() - oldest).total_seconds() if oldest else None
        self.figures = {
            "pending": pending["count"],
            "oldest_pending_age_seconds": round(age) if age is not None else None,
            "failed": failed,
        }
        if failed:
            raise ServiceWarning(f"{failed} outbox events failed")
        if age is not None and age > OUTBOX_BACKLOG_WARN_AGE.total_seconds():
            raise ServiceWarning(f"oldest pending outbox event is {round(age)} s old")


def readiness_checks():
    """The checks behind ``/ready``: the database and both portal storages."""
    return (DatabaseReady(), StorageReady(alias="portal_temp"), StorageReady(alias="portal_final"))


@dataclasses.dataclass
class FreeSpace(PortalTimeout, Disk):
    """The library's disk check (usage percent), plus a warning below twice
    ``PORTAL_MIN_FREE_BYTES``: operators hear of it before new uploads are refused."""

    alias: str = "portal_temp"
    figures: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self):
        return f"disk:{self.alias}"

    def run(self):
        self.path = storages[self.alias].location
        minimum = settings.PORTAL_MIN_FREE_BYTES
        try:
            usage = psutil.disk_usage(str(self.path))
        except FileNotFoundError as exc:
            raise ServiceUnavailable("the storage root is missing") from exc
        self.figures = {
            "free_bytes": usage.free,
            "total_bytes": usage.total,
            "refuse_new_uploads_below_bytes": minimum,
            "warn_below_bytes": 2 * minimum,
        }
        super().run()
        if minimum and usage.free < 2 * minimum:
            raise ServiceWarning(f"{usage.free} bytes free on {self.alias}")


def status_checks():
    """What ``/status`` adds to readiness (free space only where there are volumes)."""
    volumes = ("portal_temp", "portal_final") if storage.backend().has_volumes else ()
    disks = (FreeSpace(alias=alias) for alias in volumes)
    return (*(JobFreshness(job=job) for job in JOB_SCHEDULES), OutboxBacklog(), *disks)
