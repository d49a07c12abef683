"""The durable outbox: events written in the same transaction as the state they announce.

``enqueue_file_uploaded`` is called by finalize inside its transaction, so an event exists
exactly when a file is stored. ``run_dispatch`` (``manage.py portal_dispatch`` on cron)
delivers due events to the runner, at least once:

1. Claim a small batch of due rows in a short transaction (``claims``): ``pending`` rows
   whose ``next_attempt_at`` passed, or ``sending`` rows whose lease ran out (a dispatcher
   died mid-send). ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so dispatchers on
   several hosts never claim the same row; SQLite's ``BEGIN IMMEDIATE`` serialises the
   claim. The claim sets ``sending`` and ``next_attempt_at`` = the lease deadline.
2. POST each event outside any transaction, over one keep-alive connection, signed
   (``client``).
3. Record the outcomes with conditional UPDATEs that match ``sending`` *and our lease*
   (``claims``): a dispatcher whose lease ran out and whose rows were claimed again
   records nothing.

A crash between 2 and 3 leaves the rows ``sending`` until their lease runs out; the next
run sends them again. The runner deduplicates by ``event_id``.

Modules: ``events`` (payload, enqueue), ``config`` (settings, signature, retry delay),
``client`` (the runner client), ``claims`` (claim, record, release, requeue), ``dispatch``
(the run).
"""

from portal.services.outbox.claims import (
    Claim,
    Failure,
    claim_due,
    payload_text,
    record_outcomes,
    release,
    requeue_failed,
)
from portal.services.outbox.client import RunnerClient, SendOutcome
from portal.services.outbox.config import (
    LEASE_MARGIN_SECONDS,
    ConfigurationError,
    DispatchConfig,
    retry_delay,
    sign,
)
from portal.services.outbox.dispatch import DispatchResult, dispatch_due, run_dispatch
from portal.services.outbox.events import build_file_uploaded_payload, enqueue_file_uploaded

__all__ = [
    "LEASE_MARGIN_SECONDS",
    "Claim",
    "ConfigurationError",
    "DispatchConfig",
    "DispatchResult",
    "Failure",
    "RunnerClient",
    "SendOutcome",
    "build_file_uploaded_payload",
    "claim_due",
    "dispatch_due",
    "enqueue_file_uploaded",
    "payload_text",
    "record_outcomes",
    "release",
    "requeue_failed",
    "retry_delay",
    "run_dispatch",
    "sign",
]
