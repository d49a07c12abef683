"""Operational cleanup: the four steps ``portal_cleanup`` runs, in this order.

1. ``stale``   open sessions past ``expires_at`` become ``failed`` ("expired"), their files too;
2. ``orphans`` temp objects of terminal sessions' parts are deleted, then ``temp_key`` cleared;
3. ``sweep``   temp objects older than the grace period that no part row points to go;
4. ``prune``   failed/aborted sessions past retention (with files and parts), delivered
               outbox events and old job runs are deleted.

How the work is cut (measured in docs/cleanup-performance.md): every step works in batches
of ``batch_size`` rows, each batch its own short transaction, so memory stays flat and no
lock is held while storage is busy. Writes name rows by primary key only. A write that
also filters on ``status``/``expires_at`` lets SQLite (no statistics) and PostgreSQL
(stale statistics right after a bulk change) pick the status index and rescan every
remaining candidate for each batch, which is quadratic. Candidates come from the indexes
the models declare, one ``LIMIT``-ed query per batch. Storage goes first and the database
second when deleting.

Modules: ``base`` (options, results, batching), one module per step, ``run`` (the steps
in order, and the locked, recorded ``portal_cleanup`` job).
"""

from portal.services.cleanup.base import STEPS, CleanupOptions, StepResult
from portal.services.cleanup.orphans import cleanup_orphan_temp_parts
from portal.services.cleanup.prune import prune_old_failed_sessions
from portal.services.cleanup.run import run_cleanup, run_cleanup_job
from portal.services.cleanup.stale import cleanup_stale_sessions
from portal.services.cleanup.sweep import sweep_temp_storage

__all__ = [
    "STEPS",
    "CleanupOptions",
    "StepResult",
    "cleanup_orphan_temp_parts",
    "cleanup_stale_sessions",
    "prune_old_failed_sessions",
    "run_cleanup",
    "run_cleanup_job",
    "sweep_temp_storage",
]
