"""Pins (issue #31, round 4) for the metrics directory's lock file."""

import stat

from portal.metrics import multiproc
from tests.multiproc_helpers import scrape


def test_the_scrape_lock_file_is_readable_and_writable_by_its_owner_only(tmp_path):
    """Every worker of the service user opens the lock file read-write; no other user may
    (a stray exclusive lock from another account would block every scrape)."""
    scrape(tmp_path)
    mode = stat.S_IMODE((tmp_path / multiproc.LOCK_FILE).stat().st_mode)
    assert mode == 0o600
