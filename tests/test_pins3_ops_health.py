"""``/ready``'s database check really asks the database: a database that cannot be opened
reads unavailable, not ok (the gunicorn test with a stopped PostgreSQL is a slow test)."""

import pytest
from django.db import connections
from health_check.exceptions import ServiceUnavailable

from portal.health.checks import DatabaseReady


@pytest.fixture
def unopenable_database(tmp_path, monkeypatch, django_db_blocker):
    """A second alias whose SQLite file lies in a directory that does not exist (the test
    database is left alone: only this alias is opened)."""
    broken = {**connections.settings["default"], "NAME": str(tmp_path / "gone" / "db.sqlite3")}
    monkeypatch.setitem(connections.settings, "broken", broken)
    with django_db_blocker.unblock():
        yield "broken"
    connections["broken"].close()
    del connections["broken"]


def test_a_database_that_cannot_be_opened_is_unavailable(unopenable_database):
    check = DatabaseReady(alias=unopenable_database)
    assert check.name == "database:broken"
    with pytest.raises(ServiceUnavailable):
        check.run()
