"""The django-health-check checks behind ``/ready`` and ``/status``.

``/ready`` runs ``DatabaseReady`` and one ``StorageReady`` per storage alias (a full
volume is a warning, ``StorageFull``, not a failure); ``/status`` adds ``JobFreshness``
and ``OutboxBacklog``, which only ever warn and never affect ``/ready``.
"""

import contextlib
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

# What the rendering of an answer may take on top of the checks: the library waits
# ``timeout + 1`` s for a check, so declaring ``T - margin`` keeps the whole answer in T + 1 s.
RENDER_MARGIN_SECONDS = 0.25


@contextlib.asynccontextmanager
async def database_errors_unavailable():
    """A database error in a status check reads "unavailable", not the library's "unknown"."""
    try:
        yield
    except DatabaseError as exc:
        raise ServiceUnavailable(f"{type(exc).__name__} from the database") from exc


class PortalTimeout:
    """The check budget comes from ``PORTAL_HEALTH_CHECK_TIMEOUT_SECONDS`` (read per probe)."""

    @property
    def timeout(self):
        seconds = settings.PORTAL_HEALTH_CHECK_TIMEOUT_SECONDS
        return timedelta(seconds=max(seconds - RENDER_MARGIN_SECONDS, seconds / 2))


@dataclasses.dataclass
class DatabaseReady(PortalTimeout, hc_checks.Database):
    """``SELECT 1`` on a fresh connection (the library's check) within our budget.

    A pass opens this process's database gate (``portal.dbgate``): once ``/ready`` says
    the database answers and the balancer sends traffic again, no API request may still
    get the gate's 503 while it waits for its own retry."""

    @property
    def name(self):
        return "database" if self.alias == "default" else f"database:{self.alias}"

    def run(self):
        super().run()
        if self.alias == "default":
            from portal import dbgate  # the gate answers with the API's errors: load it late

            dbgate.gate.succeeded()


class StorageFull(ServiceWarning):
    """The storage's write test failed only for lack of room (ENOSPC, EDQUOT): the volume
    is there and answers, so reads, finalize by link and aborts still work. ``/ready``
    says ``full`` and stays 200 (docs/configuration.md, "Free space")."""


NO_ROOM = (errno.ENOSPC, errno.EDQUOT)


@dataclasses.dataclass
class StorageReady(PortalTimeout, hc_checks.Storage):
    """Write, read and delete one small object (the library's check) within our budget.

    Any failure of the backend (an ``OSError`` when the directory is gone, a botocore
    error when S3 is unreachable) becomes ``ServiceUnavailable``, so the result says
    "unavailable" instead of the library's logged "unknown error"; a write refused only
    for lack of room is ``StorageFull``.
    """

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
    """Whether ``exc`` (or an error it was raised from) is a write refused for room."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno in NO_ROOM:
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


@dataclasses.dataclass
class JobFreshness(PortalTimeout, HealthCheck):
    """Warn when the last successful run of ``job`` is older than twice its cron schedule.

    ``ok`` and ``partial`` runs count as success: a partial cleanup still ran. Async, so
    its queries run on the request's own thread (``a*`` ORM methods), never in the shared
    probe pool. ``figures`` holds what ``/status`` shows.
    """

    job: str = "portal_cleanup"
    figures: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self):
        return f"job:{self.job}"

    @property
    def max_age(self):
        return 2 * JOB_SCHEDULES[self.job]

    async def run(self):
        async with database_errors_unavailable():
            await self.measure()

    async def measure(self):
        last = await (
            JobRun.objects.filter(
                job=self.job, outcome__in=[JobRun.Outcome.OK, JobRun.Outcome.PARTIAL]
            )
            .order_by("-started_at")
            .afirst()
        )
        at = (last.finished_at or last.started_at) if last else None
        age = (timezone.now() - at).total_seconds() if at else None
        self.figures = {
            "last_success_at": at.isoformat() if at else None,
            "age_seconds": round(age) if age is not None else None,
            "max_age_seconds": round(self.max_age.total_seconds()),
        }
        if at is None:
            raise ServiceWarning(f"{self.job} has never completed")
        if age > self.max_age.total_seconds():
            raise ServiceWarning(f"{self.job} last completed {round(age)} s ago")


@dataclasses.dataclass
class OutboxBacklog(PortalTimeout, HealthCheck):
    """Pending count, oldest pending age and failed count; warns on failed or old events."""

    figures: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self):
        return "outbox"

    async def run(self):
        async with database_errors_unavailable():
            await self.measure()

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
    """Free space of a local storage volume, for ``/status`` only (it never fails ``/ready``).

    django-health-check's disk check (its usage-percent warning, 90 % by default), plus
    the portal's own threshold in bytes: a warning below twice ``PORTAL_MIN_FREE_BYTES``,
    so operators hear of it before the free-space guard starts refusing new uploads.
    """

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
    """What ``/status`` adds to readiness: cron heartbeats, the outbox backlog, and the
    free space of local storage volumes (S3 has none)."""
    volumes = ("portal_temp", "portal_final") if storage.backend().has_volumes else ()
    disks = (FreeSpace(alias=alias) for alias in volumes)
    return (*(JobFreshness(job=job) for job in JOB_SCHEDULES), OutboxBacklog(), *disks)
