"""Quotas per owner (checked with the owner's row locked, so concurrent creates cannot
overshoot), the free-space guard (docs/configuration.md, "Free space"), and storage
failures as a clean 503/507 to the client (the cause, which may name a path or a host,
only to the log)."""

import contextlib
import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Q, Sum
from django.utils import timezone

from portal import storage
from portal.models import UploadSession
from portal.observability import log_event
from portal.services.errors import InsufficientStorage, QuotaExceeded, Unavailable

logger = logging.getLogger("portal.services")


def counted(now=None, prefix=""):
    """The sessions that count against the quotas: open and unexpired, or finalizing."""
    return Q(
        **{
            f"{prefix}status__in": UploadSession.OPEN_STATUSES,
            f"{prefix}expires_at__gt": now or timezone.now(),
        }
    ) | Q(**{f"{prefix}status": UploadSession.Status.FINALIZING})


def usage(owner_id, *, now=None):
    """The owner's counted sessions: ``(count, declared bytes)``."""
    totals = (
        UploadSession.objects.filter(owner_id=owner_id)
        .filter(counted(now))
        .aggregate(count=Count("pk"), size=Sum("total_size_bytes"))
    )
    return totals["count"], totals["size"] or 0


def lock_owner(owner):
    """Lock the owner's row until the transaction ends: a second create then sees the
    first one's session, in the quotas and under its idempotency key."""
    get_user_model().objects.select_for_update().filter(pk=owner.pk).first()


def reserve(owner, size_bytes):
    """429 for a new session that would take ``owner`` over a quota (after ``lock_owner``)."""
    count, pending = usage(owner.pk)
    limit = settings.PORTAL_MAX_OPEN_SESSIONS_PER_USER
    if limit and count + 1 > limit:
        raise QuotaExceeded(
            f"you have {count} open upload sessions, the limit is {limit}: finish or "
            "abort one first",
            details={"limit": "PORTAL_MAX_OPEN_SESSIONS_PER_USER", "allowed": limit},
        )
    limit = settings.PORTAL_MAX_PENDING_BYTES_PER_USER
    if limit and pending + size_bytes > limit:
        raise QuotaExceeded(
            f"your open upload sessions declare {pending} bytes; {size_bytes} more would "
            f"exceed the limit of {limit}",
            details={"limit": "PORTAL_MAX_PENDING_BYTES_PER_USER", "allowed": limit},
        )


def ensure_room_for_a_new_session():
    """507 while the temp or the final volume has less free than ``PORTAL_MIN_FREE_BYTES``."""
    minimum = settings.PORTAL_MIN_FREE_BYTES
    if not minimum:
        return
    for name in ("temp", "final"):
        with storage_faults("checking free space"):
            free = storage.free_bytes(name)
        if free is not None and free < minimum:
            raise InsufficientStorage(
                f"the {name} volume is nearly full; new uploads are refused until "
                "there is room again (uploads in progress carry on)",
                code="insufficient_storage",
            )


def ensure_room(name, size_bytes):
    """507 unless writing ``size_bytes`` to volume ``name`` leaves the reserve free; call
    inside ``storage_faults`` (a volume that cannot be looked at is a 503)."""
    if not size_bytes:
        return
    free = storage.free_bytes(name)
    reserve = settings.PORTAL_FREE_SPACE_RESERVE_BYTES
    if free is not None and free - size_bytes < reserve:
        raise InsufficientStorage(
            f"the {name} volume has no room for {size_bytes} bytes now (it keeps {reserve} "
            "bytes free); nothing was lost, try again later",
            code="insufficient_storage",
        )


@contextlib.contextmanager
def storage_faults(action, **context):
    """Inside the block, a storage outage is logged and becomes ``503 storage_unavailable``."""
    try:
        yield
    except storage.StorageUnavailable as exc:
        cause = exc.__cause__ or exc
        refused = isinstance(exc, storage.StorageLinkRefused)
        log_event(
            logger,
            "storage.link_refused" if refused else "storage.unavailable",
            f"storage {'refused a link' if refused else 'failed'} while {action}: {exc}",
            level=logging.ERROR if refused else logging.WARNING,
            error_type=type(cause).__name__,
            error=str(cause)[:500],
            **context,
        )
        if isinstance(exc, storage.StorageFull):
            raise InsufficientStorage(
                f"storage is full while {action}; nothing was lost, try again later",
                code="insufficient_storage",
            ) from None
        raise Unavailable(
            f"storage is unavailable while {action}; nothing was lost, try again shortly",
            code="storage_unavailable",
        ) from None
