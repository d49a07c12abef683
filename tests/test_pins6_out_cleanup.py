"""Weak pins in cleanup (issue #31, sixth round): the per-step records and boundaries where
a wrong step used to pass too."""

import logging

from portal.services import cleanup
from tests.test_pins_jobs import events_named


def test_each_step_line_of_a_dry_run_says_so_and_a_real_runs_do_not(db, portal_storage, caplog):
    """An operator reading "cleanup step sweep" in the text log must be able to tell a
    rehearsal from a run that deleted: every step line of a dry run carries "(dry run)"
    and ``dry_run=True``, and no line of a real run does."""
    caplog.set_level(logging.INFO, logger="portal")
    seen = {}
    for dry_run in (True, False):
        caplog.clear()
        cleanup.run_cleanup(cleanup.CleanupOptions(dry_run=dry_run))
        seen[dry_run] = [(r.getMessage(), r.dry_run) for r in events_named(caplog, "cleanup.step")]
    steps = ("stale", "orphans", "sweep", "prune")
    assert seen[True] == [(f"cleanup step {step} (dry run)", True) for step in steps]
    assert seen[False] == [(f"cleanup step {step}", False) for step in steps]
