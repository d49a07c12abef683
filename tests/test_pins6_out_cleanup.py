"""Weak pins in cleanup (issue #31, sixth round): the per-step records and boundaries where
a wrong step used to pass too."""

import logging
from datetime import timedelta

from django.utils import timezone

from portal.services import cleanup
from tests.seed import put_untracked_temp, storage_listing
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


def test_sweep_keeps_an_object_exactly_the_grace_old_and_deletes_one_a_second_older(
    db, portal_storage, settings
):
    """Sweep deletes untracked temp objects *older* than the grace: one written exactly
    ``PORTAL_ORPHAN_GRACE_MINUTES`` ago may belong to a part whose row is about to commit
    and stays; one a second older goes. Tests that put objects hours away pass either way."""
    settings.PORTAL_ORPHAN_GRACE_MINUTES = 10
    now = (timezone.now() + timedelta(minutes=30)).replace(microsecond=0)
    at_grace = put_untracked_temp(now - timedelta(minutes=10))
    older = put_untracked_temp(now - timedelta(minutes=10, seconds=1))

    result = cleanup.sweep_temp_storage(cleanup.CleanupOptions(now=now))

    assert (result.counts["objects_listed"], result.counts["objects_deleted"]) == (1, 1)
    assert storage_listing()["temp"] == [at_grace]
    assert older not in storage_listing()["temp"]
