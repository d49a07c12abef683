"""Pins for the ops area (issue #31), in-process: the status page's units and reasons at
their boundaries (``portal.services.status``), the trend, and the admin."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from portal.models import JobRun, OutboxEvent
from portal.services.status import page
from tests.status_helpers import MIB, disk

# --- portal.services.status: units and reasons at their boundaries ------------------------


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),  # not "1 bytes"
        (1023, "1023 bytes"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (1024**2, "1.0 MiB"),
        (99 * 1024**3, "99.0 GiB"),
        (1024**4, "1.0 TiB"),
        (1024**6, "1024 PiB"),
    ],
)
def test_binary_sizes(count, text):
    assert page.binary_size(count) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-3, "0 ms"),
        (0, "0 ms"),
        (0.0004, "0 ms"),
        (0.999, "999 ms"),
        (1, "1.0 s"),
        (9.94, "9.9 s"),
        (10, "10 s"),
        (59.6, "1 min"),
        (3599, "59 min"),
        (3600, "1 h"),
        (3660, "1 h 1 min"),
        (9 * 3600 + 59 * 60, "9 h 59 min"),
        (86400 + 3600, "1 d 1 h"),
        (12 * 86400 + 7200, "12 d"),
    ],
)
def test_durations(seconds, text):
    assert page.duration(seconds) == text


def test_ago_and_sentences():
    assert (page.ago(0), page.ago(0.99), page.ago(1)) == ("just now", "just now", "1.0 s ago")
    assert page.sentence("is portal_dispatch running?") == "is portal_dispatch running?"
    assert page.sentence("stop!") == "stop!"
    assert page.sentence("nothing stuck") == "nothing stuck."
    assert page.sentence("") == ""
    assert page.state("weird") == {"name": "weird", "mark": "?"}


@pytest.mark.parametrize(
    ("figures", "reason"),
    [
        (disk(), "enough free space."),
        (disk(free=20 * MIB), "enough free space."),
        (
            disk(state="warning", free=20 * MIB - 1),
            "free space is below the warning level; new uploads stop soon.",
        ),
        (
            disk(state="warning", free=10 * MIB - 1),
            "new uploads are refused: free space is below the limit.",
        ),
        (disk(state="warning", warn=0, refuse=0), "the volume is 50 % used."),
        ({"state": "unavailable"}, "the storage root is missing or unreadable."),
    ],
)
def test_disk_reasons(figures, reason):
    assert page.disk_section("portal_temp", figures)["reason"] == reason


def test_disk_thresholds_off_and_an_empty_volume():
    section = page.disk_section("portal_temp", disk(total=0, free=0, warn=0, refuse=0))
    assert (section["used_share"], section["warn_below"]) == (0, "off")
    assert section["refuse_below"] == "off (PORTAL_MIN_FREE_BYTES=0)"
    assert (section["free"], section["total"]) == ("0 bytes", "0 bytes")


@pytest.mark.parametrize(
    ("figures", "reason", "oldest"),
    [
        ({"state": "ok", "pending": 0, "failed": 0}, "nothing stuck.", "none pending"),
        (
            {"state": "ok", "pending": 1, "failed": 0, "oldest_pending_age_seconds": 900},
            "nothing stuck.",
            "15 min",
        ),
        (
            {"state": "warning", "pending": 1, "failed": 0, "oldest_pending_age_seconds": 901},
            "the oldest pending event waits for 15 min: is portal_dispatch running?",
            "15 min",
        ),
        ({"state": "unavailable"}, "the outbox could not be read: is the database up?", None),
    ],
)
def test_outbox_reasons(db, figures, reason, oldest):
    from portal.services.jobs import OUTBOX_BACKLOG_WARN_AGE

    assert timedelta(minutes=15) == OUTBOX_BACKLOG_WARN_AGE
    section = page.outbox_section(figures, timezone.now())
    assert section["reason"] == reason
    if oldest:
        assert section["oldest_pending"] == oldest


def test_only_staff_with_the_change_permission_may_requeue(db, django_user_model):
    from django.contrib.auth.models import Permission

    person = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    assert not page.can_requeue(person)
    person.user_permissions.add(Permission.objects.get(codename="change_outboxevent"))
    person = django_user_model.objects.get(pk=person.pk)  # the permission cache
    assert page.can_requeue(person)
    person.is_staff = False
    assert not page.can_requeue(person)


# --- portal.services.status.trend -----------------------------------------------------------


@time_machine.travel("2026-12-07 14:30:00+00:00", tick=False)
def test_backlog_points_take_whole_numbers_of_successful_runs_only(db):
    from portal.services.status import trend

    now = timezone.now()
    for minutes, backlog, outcome in [
        (5, 7, JobRun.Outcome.OK),
        (4, True, JobRun.Outcome.OK),
        (3, "9", JobRun.Outcome.PARTIAL),
        (2, 4, JobRun.Outcome.PARTIAL),
        (1, 99, JobRun.Outcome.FAILED),
    ]:
        at = now - timedelta(minutes=minutes)
        JobRun.objects.create(
            job="portal_dispatch",
            started_at=at,
            finished_at=at,
            outcome=outcome,
            counts={"backlog": backlog},
        )
    assert [backlog for _, backlog in trend.backlog_per_run()] == [7, 4]


@time_machine.travel("2026-12-07 14:30:00+00:00", tick=False)
def test_hour_labels_every_third_hour(db):
    from portal.services.status import trend

    hours = trend.hourly_uploads(timezone.now())
    svg = str(trend.uploads_charts(hours)["uploads_svg"])
    labels = [label for label in ("00h", "03h", "06h", "09h", "12h", "15h", "18h", "21h")]
    for label in labels:
        assert f">{label}</text>" in svg
    for label in ("01h", "04h", "08h", "14h"):
        assert f">{label}</text>" not in svg


# --- portal.admin ---------------------------------------------------------------------------


def test_only_a_superuser_may_change_an_outbox_event(admin_client, django_user_model):
    from django.contrib.auth.models import Permission

    event = OutboxEvent.objects.create(
        event_type="file.uploaded",
        aggregate_id="x",
        payload={},
        idempotency_key="admin-edit",
        status=OutboxEvent.Status.FAILED,
        next_attempt_at=timezone.now(),
    )
    url = f"/admin/portal/outboxevent/{event.pk}/change/"
    assert admin_client.get(url).context["has_change_permission"] is True
    person = django_user_model.objects.create_user("desk", password="pw-desk", is_staff=True)
    person.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_outboxevent", "change_outboxevent"])
    )
    client = Client()
    client.force_login(person)
    response = client.get(url)
    assert response.status_code == 200
    assert response.context["has_change_permission"] is False


def test_a_user_without_sessions_shows_zero_pending_bytes(admin_client):
    html = admin_client.get("/admin/auth/user/").content.decode()
    assert '<td class="field-open_sessions">0</td>' in html
    assert '<td class="field-pending_bytes">0</td>' in html
