"""What one claim of the dispatcher takes (``portal.services.outbox.claim_due``), on the
run's database: rows of both kinds that are due, in the documented order."""

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.models import OutboxEvent
from portal.services import outbox
from tests.outbox_helpers import config, make_events, point_at_runner, reload
from tests.runner import RunnerServer


@pytest.fixture
def runner_settings(settings):
    """A dispatcher's settings; nothing is sent here."""
    with RunnerServer("ok") as runner:
        yield point_at_runner(settings, runner)


def test_a_claim_takes_expired_leases_first_then_fills_up_with_pending_rows(db, runner_settings):
    now, sending = timezone.now(), OutboxEvent.Status.SENDING
    expired = [make_events(1, due=now - timedelta(minutes=m), status=sending)[0] for m in (1, 2)]
    pending = [make_events(1, due=now - timedelta(minutes=m))[0] for m in (3, 5, 4)]

    claim = outbox.claim_due(config(), batch_size=4)

    taken = [expired[1], expired[0], pending[1], pending[2]]  # each kind oldest first
    assert [e.id for e in claim.events] == [e.pk for e in taken]
    assert {reload(e).next_attempt_at for e in taken} == {claim.lease_until}
    assert reload(pending[0]).status == OutboxEvent.Status.PENDING  # past the batch
