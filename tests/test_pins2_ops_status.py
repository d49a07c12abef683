"""Pins for the ops area (issue #31, second round): the ``/status`` page
(``portal.services.status.page``) shows the ten events that gave up last and marks an
unavailable check so that it reads without colour."""

from datetime import timedelta

from django.utils import timezone

from portal.models import OutboxEvent
from tests.health_helpers import break_local_storage
from tests.status_helpers import HTML, failed_event, fresh_probe_cache  # noqa: F401  (autouse)


def test_the_page_lists_the_ten_events_that_gave_up_last(db, portal_storage, operator):
    now = timezone.now()
    events = []
    for n in range(12):
        event = failed_event(f"HTTP 5{n:02d} from the runner")
        OutboxEvent.objects.filter(pk=event.pk).update(next_attempt_at=now - timedelta(hours=n))
        events.append(event)
    html = operator.get("/status", HTTP_ACCEPT=HTML).content.decode()
    outbox = html.split('id="outbox"')[1].split('id="disks"')[0]
    assert "12 event(s) gave up" in outbox
    assert outbox.count('name="event_id"') == 10
    shown = [event for event in events if str(event.pk) in outbox]
    assert shown == events[:10]  # the two that gave up first are left out


def test_an_unavailable_check_is_marked_with_a_cross(
    db,
    settings,
    data_dir,
    operator,
):
    from tests.conftest import apply_storage

    apply_storage(settings, "local", data_dir)
    break_local_storage(data_dir)
    page = operator.get("/status", HTTP_ACCEPT=HTML)
    assert page.status_code == 503
    assert "✖ unavailable" in page.content.decode()


def test_a_job_that_never_succeeded_names_its_latest_runs_outcome(
    db,
    portal_storage,
    operator,
):
    from portal.models import JobRun
    from tests.status_helpers import run, text_of

    run("portal_cleanup", JobRun.Outcome.SKIPPED, timedelta(hours=2))
    run("portal_cleanup", JobRun.Outcome.FAILED, timedelta(minutes=5))
    page = operator.get("/status", HTTP_ACCEPT=HTML)
    assert "never succeeded; last run failed" in text_of(page)
    assert "never succeeded; last run skipped" not in text_of(page)
