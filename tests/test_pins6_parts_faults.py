"""Pins for the part API's storage faults, sixth round (issue #31): the log names the
underlying cause (its type and text, cut to 500 characters), never the wrapper's."""

import logging

import pytest

from portal import storage
from tests.api_helpers import Api, error_code, make_token


@pytest.fixture
def api(client, user, portal_storage):
    return Api(client, make_token(user))


def events(caplog, name):
    return [record for record in caplog.records if getattr(record, "event", None) == name]


def failing_with(cause):
    def free_bytes(name):
        raise storage.StorageUnavailable("the temp volume failed") from cause

    return free_bytes


def test_an_outage_logs_its_cause_not_the_wrapper(api, monkeypatch, caplog):
    """The operator reads what failed underneath (a refused connection to a host), while
    the client's 503 names none of it."""
    caplog.set_level(logging.INFO, logger="portal")
    session = api.start(b"x" * 20, 10)["id"]
    monkeypatch.setattr(
        storage, "free_bytes", failing_with(ConnectionRefusedError("refused by 10.0.0.7:9000"))
    )

    response = api.put(session, 2, b"x" * 10)

    assert (response.status_code, error_code(response)) == (503, "storage_unavailable")
    assert "10.0.0.7" not in response.content.decode()
    [record] = events(caplog, "storage.unavailable")
    assert (record.error_type, record.error) == (
        "ConnectionRefusedError",
        "refused by 10.0.0.7:9000",
    )
    assert record.getMessage() == "storage failed while storing a part: the temp volume failed"
    assert (record.session_id, record.part_number) == (session, 2)


def test_a_long_cause_is_logged_cut_to_500_characters(api, monkeypatch, caplog):
    """A cause of any length is logged as its first 500 characters (a whole response body
    in an exception must not flood the log)."""
    caplog.set_level(logging.INFO, logger="portal")
    session = api.start(b"x" * 20, 10)["id"]
    monkeypatch.setattr(storage, "free_bytes", failing_with(OSError("y" * 499 + "z" + "tail")))

    assert api.put(session, 1, b"x" * 10).status_code == 503

    [record] = events(caplog, "storage.unavailable")
    assert record.error == "y" * 499 + "z"
