"""The steps ``portal_cleanup`` runs in order, in batches of short transactions that name
rows by primary key only (why: docs/design.md, "Periodic jobs")."""

from portal.services.cleanup.base import STEPS, CleanupOptions
from portal.services.cleanup.orphans import cleanup_orphan_temp_parts
from portal.services.cleanup.prune import prune_old_failed_sessions
from portal.services.cleanup.run import run_cleanup, run_cleanup_job
from portal.services.cleanup.stale import cleanup_stale_sessions
from portal.services.cleanup.sweep import sweep_temp_storage

__all__ = [
    "STEPS",
    "CleanupOptions",
    "cleanup_orphan_temp_parts",
    "cleanup_stale_sessions",
    "prune_old_failed_sessions",
    "run_cleanup",
    "run_cleanup_job",
    "sweep_temp_storage",
]
