"""Pins for the upload area, fourth round (issue #31): SQLite's file locks under a data
directory that does not exist yet."""

import pytest
from django.db import connection

from portal import locks


def test_a_file_lock_creates_a_missing_data_directory_and_is_taken_again(settings, tmp_path):
    """SQLite with its database elsewhere and S3 storage leaves ``PORTAL_DATA_DIR`` uncreated:
    the first finalize's lock must create it (with its parents), and a later one reuse it."""
    if connection.vendor != "sqlite":
        pytest.skip("file locks are SQLite's; PostgreSQL takes advisory locks")
    settings.PORTAL_DATA_DIR = str(tmp_path / "not" / "yet")
    with locks.hold("finalize:1"):
        assert (tmp_path / "not" / "yet" / "locks").is_dir()
    with locks.hold("finalize:1"):
        pass


def advisory_locks_held():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@pytest.mark.postgres
def test_a_postgres_lock_whose_digest_has_the_high_bit_set_is_taken(
    transactional_db, postgres_only
):
    """Half of all names (``finalize:1`` among them) hash to a key above 2**63: it must map
    into PostgreSQL's signed bigint, or every such finalize fails with a database error."""
    with locks.hold("finalize:1"):
        assert advisory_locks_held() == 1
    assert advisory_locks_held() == 0
