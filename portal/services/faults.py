"""A failing storage during a request: its cause (which may name a path or a host) to the
log, a clean 503 (507 when full) to the client, who retries the same request."""

import contextlib
import logging

from portal import storage
from portal.observability import log_event
from portal.services.errors import InsufficientStorage, Unavailable

logger = logging.getLogger("portal.services")


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
