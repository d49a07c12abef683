"""Django system checks for settings that relate several values (``portal.E001``…).

Single-value rules (a number, a choice, a URL) are enforced while the settings load
(``boot.config``); these run in ``manage.py check`` and at start-up of every command and
of the WSGI application (``boot.wsgi``).

The second half holds the django-health-check checks behind ``/ready`` and ``/status``.
"""

import contextlib
import dataclasses
from datetime import timedelta

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.db import DatabaseError
from django.db.models import Count, Min
from django.utils import timezone
from health_check import checks as hc_checks
from health_check.base import HealthCheck
from health_check.exceptions import HealthCheckException, ServiceUnavailable, ServiceWarning

from boot.config import is_http_url
from portal.models import JobRun, OutboxEvent

PORTAL_TAG = "portal"


def _error(code, msg, hint):
    return Error(msg, hint=hint, id=f"portal.{code}")


@register(PORTAL_TAG, Tags.compatibility)
def check_chunk_sizes(app_configs=None, **kwargs):
    low, default, high = (
        settings.PORTAL_CHUNK_SIZE_MIN,
        settings.PORTAL_CHUNK_SIZE,
        settings.PORTAL_CHUNK_SIZE_MAX,
    )
    errors = []
    if not low <= default <= high:
        errors.append(
            _error(
                "E001",
                f"PORTAL_CHUNK_SIZE ({default}) must lie between PORTAL_CHUNK_SIZE_MIN ({low}) "
                f"and PORTAL_CHUNK_SIZE_MAX ({high}).",
                "Set PORTAL_CHUNK_SIZE_MIN <= PORTAL_CHUNK_SIZE <= PORTAL_CHUNK_SIZE_MAX.",
            )
        )
    if high > settings.PORTAL_MAX_FILE_SIZE:
        errors.append(
            _error(
                "E002",
                f"PORTAL_CHUNK_SIZE_MAX ({high}) must not exceed PORTAL_MAX_FILE_SIZE "
                f"({settings.PORTAL_MAX_FILE_SIZE}).",
                "Lower PORTAL_CHUNK_SIZE_MAX or raise PORTAL_MAX_FILE_SIZE.",
            )
        )
    return errors


@register(PORTAL_TAG, Tags.compatibility)
def check_durations(app_configs=None, **kwargs):
    errors = []
    base, cap = settings.PORTAL_OUTBOX_BASE_DELAY_SECONDS, settings.PORTAL_OUTBOX_MAX_DELAY_SECONDS
    if base > cap:
        errors.append(
            _error(
                "E003",
                f"PORTAL_OUTBOX_BASE_DELAY_SECONDS ({base:g}) must not exceed "
                f"PORTAL_OUTBOX_MAX_DELAY_SECONDS ({cap:g}).",
                "The retry delay grows from the base up to the max.",
            )
        )
    return errors


@register(PORTAL_TAG, Tags.compatibility)
def check_runner(app_configs=None, **kwargs):
    endpoint = settings.PORTAL_RUNNER_ENDPOINT
    if endpoint and not is_http_url(endpoint):
        return [
            _error(
                "E004",
                "PORTAL_RUNNER_ENDPOINT must be an http:// or https:// URL with a host.",
                "Example: https://runner.internal/hooks/portal",
            )
        ]
    if endpoint and not settings.PORTAL_RUNNER_AUTH_SECRET:
        return [
            _error(
                "E005",
                "PORTAL_RUNNER_AUTH_SECRET must be set when PORTAL_RUNNER_ENDPOINT is set.",
                "The runner verifies the X-Portal-Signature HMAC with this shared secret.",
            )
        ]
    return []


@register(PORTAL_TAG, Tags.compatibility)
def check_storage(app_configs=None, **kwargs):
    if settings.PORTAL_STORAGE == "s3" and not settings.AWS_STORAGE_BUCKET_NAME:
        return [
            _error(
                "E006",
                "PORTAL_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME.",
                "Set AWS_STORAGE_BUCKET_NAME (and AWS_S3_ENDPOINT_URL for a non-AWS service).",
            )
        ]
    if settings.PORTAL_STORAGE == "s3" and bool(settings.AWS_ACCESS_KEY_ID) != bool(
        settings.AWS_SECRET_ACCESS_KEY
    ):
        # boto3 would fail on the first request with PartialCredentialsError.
        return [
            _error(
                "E007",
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together.",
                "Set both, or neither to use boto3's default chain (instance role, profile).",
            )
        ]
    return []


# --- Readiness and status checks (django-health-check) ----------------------------------
#
# /ready runs DatabaseReady and one StorageReady per storage alias; /status adds
# JobFreshness and OutboxBacklog, which only ever warn and never affect /ready.

# What the rendering of an answer may take on top of the checks: the library waits
# ``timeout + 1`` s for a check, so declaring ``T - margin`` keeps the whole answer in T + 1 s.
RENDER_MARGIN_SECONDS = 0.25
OUTBOX_BACKLOG_WARN_AGE = timedelta(minutes=15)
JOB_SCHEDULES = {"portal_cleanup": timedelta(minutes=15), "portal_dispatch": timedelta(minutes=1)}


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
    """``SELECT 1`` on a fresh connection (the library's check) within our budget."""

    @property
    def name(self):
        return "database" if self.alias == "default" else f"database:{self.alias}"


@dataclasses.dataclass
class StorageReady(PortalTimeout, hc_checks.Storage):
    """Write, read and delete one small object (the library's check) within our budget.

    Any failure of the backend (an ``OSError`` when the directory is gone, a botocore
    error when S3 is unreachable) becomes ``ServiceUnavailable``, so the result says
    "unavailable" instead of the library's logged "unknown error".
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
            raise ServiceUnavailable(f"{type(exc).__name__} on storage {self.alias}") from exc


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
    return (
        DatabaseReady(),
        StorageReady(alias="portal_temp"),
        StorageReady(alias="portal_final"),
    )


def status_checks():
    """What ``/status`` adds to readiness: cron heartbeats and the outbox backlog."""
    return (*(JobFreshness(job=job) for job in JOB_SCHEDULES), OutboxBacklog())
