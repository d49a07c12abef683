"""``POST …/finalize``: start (or join) the assembly in a thread and wait at most
``PORTAL_FINALIZE_WAIT_SECONDS`` for it (else 202, the client polls)."""

import contextvars
import logging
import threading
import time

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from portal import locks
from portal.models import UploadSession
from portal.services.errors import ApiError, InsufficientStorage
from portal.services.finalize import lease
from portal.services.finalize.assembly import assemble, ensure_ready
from portal.services.guards import storage_faults
from portal.services.sessions import ensure_open, get_session, ttl

logger = logging.getLogger("portal.services.finalize")
POLL_SECONDS = 0.2
# Assemblies one process runs at once. A finalize past it waits for a slot within its own
# wait; if none frees up by then it starts none: the session's lease is handed back
# (claimable at once) and portal_finalize assembles it, so a client with many sessions
# cannot fill a worker with assembly threads.
ASSEMBLIES_PER_PROCESS = 4
_assembly_slots = threading.BoundedSemaphore(ASSEMBLIES_PER_PROCESS)
Status = UploadSession.Status


def finalize_session(owner, session_id):
    """The stored ``IngestFile`` (200), or None while the assembly goes on (202)."""
    session = get_session(owner, session_id)
    if session.status == Status.COMPLETE:
        return session.file
    if session.status != Status.FINALIZING:
        ensure_open(session)
        try:
            with storage_faults("checking free space", session_id=str(session.pk)):
                ensure_ready(session)
        except InsufficientStorage:
            keep_for_retries(session.pk)
            raise
        lease.begin(session.pk)
    return _wait_for(session, settings.PORTAL_FINALIZE_WAIT_SECONDS)


def _wait_for(session, wait_seconds):
    """The file once assembled, None if it is not by ``wait_seconds`` from now; a request
    whose assembler found the lock taken or no slot watches for the whole wait too."""
    deadline = time.monotonic() + wait_seconds
    assembler = Assembler(session, slot_wait=wait_seconds)
    if assembler.done.wait(_left(deadline)) and assembler.error is not None:
        raise assembler.error
    outcome = _outcome(session.pk)
    while outcome is None and _left(deadline) and (assembler.busy or not assembler.done.is_set()):
        time.sleep(min(POLL_SECONDS, _left(deadline)))
        outcome = _outcome(session.pk)
    return outcome


def _left(deadline):
    return max(0.0, deadline - time.monotonic())


def _outcome(session_pk):
    """The file once complete, None while finalizing; 410 ``session_failed`` (with its
    reason) if another assembler failed it: only the one that found a part changed says
    ``part_corrupt``."""
    session = UploadSession.objects.select_related("file").get(pk=session_pk)
    if session.status == Status.COMPLETE:
        return session.file
    if session.status == Status.FINALIZING:
        return None
    ensure_open(session)
    return None


class Assembler:
    """The assembly in a thread of this process once one of its slots is free (waiting at
    most ``slot_wait`` seconds; else the session goes to ``portal_finalize``), under the
    session's lock (``busy`` when another holds it); the thread closes its own database
    connections: nothing else would."""

    def __init__(self, session, *, slot_wait):
        self.session = session
        self.done = threading.Event()
        self.error = None
        self.busy = False
        if not _assembly_slots.acquire(timeout=max(0.0, slot_wait)):
            lease.hand_back(session.pk)
            self.busy = True
            self.done.set()
            return
        context = contextvars.copy_context()  # the request id, on its log lines
        name = f"assembly-{session.pk}"
        threading.Thread(target=context.run, args=(self._run,), name=name, daemon=True).start()

    def _run(self):
        try:
            with (
                locks.hold(f"finalize:{self.session.pk}"),
                storage_faults(
                    "assembling the file",
                    session_id=str(self.session.pk),
                    file_id=str(self.session.file_id),
                ),
            ):
                assemble(self.session.pk)
        except locks.LockBusy:
            self.busy = True
        except ApiError as exc:
            self.error = exc
            lease.hand_back(self.session.pk, outage=True)
        except Exception:  # the lease runs out and portal_finalize tries again
            logger.exception("assembly of session %s failed", self.session.pk)
        finally:
            connections.close_all()
            _assembly_slots.release()
            self.done.set()


def keep_for_retries(session_pk, now=None):
    """Give an open, unexpired session a full TTL from ``now`` (never a shorter one): a
    finalize refused for room (507) is retried, and cleanup must not expire it meanwhile."""
    now = now or timezone.now()
    expires_at = now + ttl()
    with transaction.atomic():
        return bool(
            UploadSession.objects.filter(
                pk=session_pk,
                status__in=UploadSession.OPEN_STATUSES,
                expires_at__gt=now,
                expires_at__lt=expires_at,
            ).update(expires_at=expires_at, updated_at=now)
        )
