"""The admin lists every portal model for an operator and stays read-mostly."""

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.models import OutboxEvent
from tests.outbox_helpers import make_events

pytestmark = pytest.mark.django_db

PAGES = [
    "ingestfile",
    "uploadsession",
    "uploadpart",
    "outboxevent",
    "apitoken",
    "jobrun",
]


@pytest.mark.parametrize("model", PAGES)
def test_changelist_renders(admin_client, model):
    response = admin_client.get(f"/admin/portal/{model}/")
    assert response.status_code == 200


@pytest.mark.parametrize("model", ["ingestfile", "uploadsession", "outboxevent", "jobrun"])
def test_no_add_page(admin_client, model):
    assert admin_client.get(f"/admin/portal/{model}/add/").status_code == 403


def test_requeue_action_requeues_only_failed_events_as_the_service_does(admin_client):
    long_ago = timezone.now() - timedelta(days=2)
    *failed, unselected = make_events(3, status=OutboxEvent.Status.FAILED, attempts=12)
    [delivered] = make_events(1, status=OutboxEvent.Status.DELIVERED, attempts=1)
    OutboxEvent.objects.update(updated_at=long_ago)
    response = admin_client.post(
        "/admin/portal/outboxevent/",
        {
            "action": "requeue",
            "_selected_action": [str(e.pk) for e in [*failed, delivered]],
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "2 event(s) requeued." in response.content.decode()
    for event in failed:
        event.refresh_from_db()
        assert (event.status, event.attempts) == ("pending", 0)
        assert event.next_attempt_at <= timezone.now()
        assert event.updated_at > long_ago
    delivered.refresh_from_db()
    assert delivered.status == OutboxEvent.Status.DELIVERED
    unselected.refresh_from_db()  # failed too, but not selected: left as it was
    assert (unselected.status, unselected.attempts) == ("failed", 12)
