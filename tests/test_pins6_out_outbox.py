"""Weak pins in the outbox (issue #31, sixth round): the failure records an operator reads
(``last_error``, ``outbox.delivery_failed``, ``outbox.gave_up``) with data where a wrong
field or text used to pass too."""

import base64
import logging
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from portal.models import OutboxEvent
from portal.services import outbox
from tests.log_helpers import events_named
from tests.outbox_helpers import config, make_events, reload

pytestmark = pytest.mark.django_db


def dispatch_at(moment):
    with time_machine.travel(moment, tick=False):
        return outbox.dispatch_due(config())


def test_a_status_without_a_reason_phrase_is_stored_without_a_trailing_space(
    runner, runner_settings, caplog
):
    """A runner may answer a status with no reason phrase (599): ``last_error`` and the
    warning read "HTTP 599", not "HTTP 599 " (the /status page and log searches match the
    exact text), and the warning names the very moment the event is due again."""
    runner.set_mode("error", status=599)
    [event] = make_events(1)
    caplog.set_level(logging.INFO, logger="portal")

    result = dispatch_at(timezone.now())

    stored = reload(event)
    assert (result.retried, stored.status, stored.last_error) == (1, "pending", "HTTP 599")
    (warning,) = events_named(caplog, "outbox.delivery_failed")
    due = stored.next_attempt_at.isoformat()
    assert warning.getMessage() == f"delivery failed (HTTP 599); retrying at {due}"
    assert (warning.next_attempt_at, warning.status_code, warning.error) == (due, 599, None)


def test_the_gave_up_error_names_the_attempts_the_limit_and_no_error_class(
    runner, runner_settings, caplog
):
    """The ERROR an operator is paged for: "gave up on event after 4 attempts: HTTP 500 ...",
    with ``max_attempts`` and the status; ``error`` is null for an HTTP answer (an empty
    string would read as "an error with no name" in the JSON log)."""
    runner.set_mode("error")
    [event] = make_events(1, attempts=3)  # the fourth and last attempt
    caplog.set_level(logging.INFO, logger="portal")

    assert dispatch_at(timezone.now()).gave_up == 1

    (record,) = events_named(caplog, "outbox.gave_up")
    assert record.getMessage() == (
        "gave up on event after 4 attempts: HTTP 500 Internal Server Error"
    )
    assert (record.levelname, record.event_id, record.attempt) == ("ERROR", str(event.pk), 4)
    assert (record.max_attempts, record.status_code, record.error) == (4, 500, None)
    assert events_named(caplog, "outbox.delivery_failed") == []
    assert reload(event).status == OutboxEvent.Status.FAILED


def test_a_network_failure_names_its_error_class_and_no_status(runner, runner_settings, caplog):
    """A runner that drops the connection: the warning carries the exception's class in
    ``error`` and no ``status_code`` (a dashboard splits network and HTTP failures on them)."""
    runner.set_mode("drop")
    [event] = make_events(1)
    caplog.set_level(logging.INFO, logger="portal")

    assert dispatch_at(timezone.now() + timedelta(seconds=1)).retried == 1

    (warning,) = events_named(caplog, "outbox.delivery_failed")
    assert warning.status_code is None
    assert warning.error and warning.error != "None"
    assert reload(event).last_error.startswith(f"{warning.error}: ")


def test_a_limit_that_is_not_a_multiple_of_the_batch_stops_exactly_at_the_limit(
    runner, runner_settings
):
    """``--limit 5`` with batches of 2: the third claim takes the one event left of the
    limit, not a whole batch; a dispatcher sizing every claim by the limit alone would
    send six and leave one fewer for the next run than the operator asked."""
    events = make_events(7)

    result = outbox.dispatch_due(config(), limit=5, batch_size=2)

    assert (result.delivered, result.released, result.stopped) == (5, 0, "limit")
    statuses = [reload(event).status for event in events]
    assert statuses.count(OutboxEvent.Status.DELIVERED) == 5
    assert statuses.count(OutboxEvent.Status.PENDING) == 2
    assert len(runner.requests) == 5


def test_a_user_name_without_a_password_goes_as_basic_auth_with_an_empty_password(
    runner, runner_settings
):
    """Runners that take an API key as the URL's user name (``https://KEY@host/hook``) get
    it as Basic auth with an empty password ("KEY:"), and the event is delivered, not
    failed on a URL without a password."""
    runner_settings.PORTAL_RUNNER_ENDPOINT = runner.url.replace("://", "://key%2F7@")
    [event] = make_events(1)

    assert outbox.dispatch_due(config()).delivered == 1

    [request] = runner.requests
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"key/7:").decode()
    assert reload(event).status == OutboxEvent.Status.DELIVERED


def test_a_runner_url_without_a_password_leaves_the_error_text_readable(runner, runner_settings):
    """A URL user without a password has an empty password to scrub: scrubbing "" would
    put a marker between every two characters of every error the operator reads."""
    runner_settings.PORTAL_RUNNER_ENDPOINT = runner.url.replace("://", "://key7@")
    runner.set_mode("drop")
    [event] = make_events(1)

    assert dispatch_at(timezone.now() + timedelta(seconds=1)).retried == 1

    last_error = reload(event).last_error
    assert last_error == "RemoteDisconnected: Remote end closed connection without response"


def test_a_requeue_stamps_the_moment_it_changed_the_event():
    """``updated_at`` is when an event last changed (the admin lists and sorts by it): a
    requeue is such a change, so it carries the requeue's moment, not the give-up's."""
    gave_up_at = timezone.now() - timedelta(hours=2)
    [failed] = make_events(1, status=OutboxEvent.Status.FAILED, attempts=4)
    OutboxEvent.objects.filter(pk=failed.pk).update(updated_at=gave_up_at)
    requeued_at = timezone.now().replace(microsecond=0) + timedelta(minutes=1)

    with time_machine.travel(requeued_at, tick=False):
        assert outbox.requeue_failed() == 1

    stored = reload(failed)
    assert (stored.status, stored.updated_at) == (OutboxEvent.Status.PENDING, requeued_at)
