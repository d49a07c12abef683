"""The /status page for a person: human units, reasons, recent runs, failed events, requeue.

In-process against the real database and storage; the page in a real browser is
``test_status_browser.py``. The JSON form is ``test_health.py``'s.
"""

import logging
import re
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from portal.models import JobRun, OutboxEvent
from portal.services.status.page import ago, binary_size, duration
from tests import fixtures
from tests.status_helpers import (  # noqa: F401  (fresh_probe_cache: autouse here)
    HTML,
    REQUEUE,
    csrf_of,
    failed_event,
    fresh_probe_cache,
    make_staff,
    monitoring_bearer,
    run,
    text_of,
)

operator = fixtures.operator  # a fixture of every module; named here for older imports


@pytest.fixture
def viewer(db, django_user_model):
    """Staff without the permission: reads the page, cannot requeue."""
    return make_staff(django_user_model, "viewer")


def test_units_read_like_a_person_writes_them():
    assert binary_size(77921726464) == "72.6 GiB"
    assert binary_size(1073741824) == "1.0 GiB"
    assert binary_size(270553174016) == "252 GiB"
    assert binary_size(512) == "512 bytes"
    assert binary_size(5 * 1024**2) == "5.0 MiB"
    assert binary_size(100 * 1024) == "100 KiB"  # three digits need no decimal
    assert ago(12) == "12 s ago"
    assert ago(3 * 3600) == "3 h ago"
    assert duration(0.42) == "420 ms"
    assert duration(75) == "1 min 15 s"
    assert duration(60) == "1 min"
    assert duration(599) == "9 min 59 s"  # the smaller unit only below ten of the larger
    assert duration(615) == "10 min"


@time_machine.travel("2026-12-07 14:30:00+00:00", tick=False)
def test_page_says_why_in_words_and_in_human_units(db, portal_storage, operator, settings):
    settings.PORTAL_MIN_FREE_BYTES = 1024**3
    run("portal_cleanup", JobRun.Outcome.OK, timedelta(minutes=3), took=timedelta(0))
    run("portal_dispatch", JobRun.Outcome.OK, timedelta(hours=3), took=timedelta(0))
    page = operator.get("/status", HTTP_ACCEPT=HTML)
    assert page.status_code == 200
    html, text = page.content.decode(), text_of(page)
    # Jobs: the reason in words, ages in words with the absolute time on hover.
    assert "never ran: is the crontab installed?" in html  # portal_finalize
    assert "last success 3 h ago, expected every 1 min." in text
    assert "last success 3 min ago, expected every 15 min." in text
    # The job warns after two of its periods without a success, as /ready's check does.
    assert "It warns after 30 min without a success." in text  # portal_cleanup
    assert "It warns after 2 min without a success." in text  # portal_dispatch
    assert '<time datetime="' in html
    assert "age_seconds" not in html and "+00:00</td>" not in html
    # Disks (local storage only): GiB and the share used, thresholds in the same unit.
    if settings.PORTAL_STORAGE == "local":
        assert "GiB of" in html and "% used" in html
        assert "Warns below</dt><dd>2.0 GiB" in html
        assert "Refuses new uploads below</dt><dd>1.0 GiB" in html
    # State marks: readable without colour.
    assert "▲ warning" in html and "✔ ok" in html


@time_machine.travel("2026-12-07 14:30:00+00:00", tick=False)
def test_recent_runs_per_job_with_counts_host_error_and_admin_link(
    db, portal_storage, operator, django_user_model
):
    for minutes in range(1, 13):
        run(
            "portal_dispatch",
            JobRun.Outcome.OK,
            timedelta(minutes=minutes),
            counts={"delivered": minutes},
        )
    run(
        "portal_cleanup",
        JobRun.Outcome.FAILED,
        timedelta(seconds=30),
        took=timedelta(seconds=75),
        counts={"error": "StorageUnavailable: /srv/portal/var/temp missing"},
        host="worker-7",
    )
    run(
        "portal_cleanup",
        JobRun.Outcome.PARTIAL,
        timedelta(minutes=20),
        counts={"stale": {"sessions_expired": 2, "sessions_failed": 0}, "orphans": {"keys": 0}},
    )
    html = operator.get("/status", HTTP_ACCEPT=HTML).content.decode()
    dispatch = html.split('id="job-portal_dispatch"')[1].split("</section>")[0]
    assert dispatch.count("<tr>") == 10 + 1  # the last 10 runs and the header
    assert "delivered 1<" in dispatch and "delivered 10<" in dispatch
    assert "delivered 11<" not in dispatch  # older than the last 10
    cleanup = html.split('id="job-portal_cleanup"')[1].split("</section>")[0]
    assert "worker-7" in cleanup and "1 min 15 s" in cleanup
    assert "StorageUnavailable: /srv/portal/var/temp missing" in cleanup
    assert "the last run failed 30 s ago" in cleanup
    assert "stale.sessions_expired 2<" in cleanup  # what did nothing is not listed
    assert "sessions_failed" not in cleanup and "orphans" not in cleanup
    assert '/admin/portal/jobrun/?job__exact=portal_cleanup"' in cleanup
    assert "portal_dispatch" not in cleanup
    admin = Client()
    admin.force_login(django_user_model.objects.create_superuser("root", password="pw-root-123"))
    listed = admin.get("/admin/portal/jobrun/?job__exact=portal_cleanup").content.decode()
    assert "2 job runs" in listed


def test_a_job_lists_its_last_10_runs_whatever_their_outcomes(db, portal_storage, operator):
    outcomes = (JobRun.Outcome.OK, JobRun.Outcome.FAILED, JobRun.Outcome.PARTIAL)
    for minutes in range(1, 19):  # 18 runs, 6 of each outcome, interleaved
        run("portal_cleanup", outcomes[minutes % 3], timedelta(minutes=minutes), host=f"h{minutes}")
    html = operator.get("/status", HTTP_ACCEPT=HTML).content.decode()
    cleanup = html.split('id="job-portal_cleanup"')[1].split("</section>")[0]
    assert cleanup.count("<tr>") == 10 + 1  # the newest 10 in all, and the header
    assert re.findall(r">h(\d+)<", cleanup) == [str(minutes) for minutes in range(1, 11)]


def test_job_error_is_recorded_by_a_failing_run(db):
    from portal.services import jobs

    with pytest.raises(RuntimeError), jobs.job_run("portal_cleanup"):
        raise RuntimeError("the volume is gone")
    assert JobRun.objects.get().counts == {"error": "RuntimeError: the volume is gone"}


def test_outbox_shows_failed_events_and_the_operator_requeues_one(
    db, portal_storage, operator, caplog
):
    events = [failed_event(f"HTTP 50{n} from the runner") for n in range(3)]
    html = operator.get("/status", HTTP_ACCEPT=HTML).content.decode()
    outbox = html.split('id="outbox"')[1].split('id="disks"')[0]
    assert "3 event(s) gave up: fix the runner" in outbox
    assert "HTTP 502 from the runner" in outbox
    assert outbox.count('name="event_id"') == 3
    assert 'name="csrfmiddlewaretoken"' in outbox

    token = csrf_of(operator)
    with caplog.at_level(logging.INFO, logger="portal.services.status"):
        answer = operator.post(
            REQUEUE, {"event_id": str(events[0].pk), "csrfmiddlewaretoken": token}
        )
    assert answer.status_code == 303
    assert answer["Location"] == "/status#outbox"
    requeued = OutboxEvent.objects.get(pk=events[0].pk)
    assert (requeued.status, requeued.attempts) == (OutboxEvent.Status.PENDING, 0)
    assert requeued.next_attempt_at <= timezone.now()
    assert OutboxEvent.objects.filter(status=OutboxEvent.Status.FAILED).count() == 2
    [record] = [r for r in caplog.records if getattr(r, "event", "") == "outbox.requeued"]
    assert (record.event_id, record.user) == (str(events[0].pk), "oncall")
    after = operator.get("/status", HTTP_ACCEPT=HTML).content.decode()
    assert f"Event {events[0].pk} requeued" in after
    assert "2 event(s) gave up" in after

    again = operator.post(REQUEUE, {"event_id": str(events[0].pk), "csrfmiddlewaretoken": token})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "event_not_failed"


@pytest.mark.parametrize(
    "event_id, status, code",
    [
        ("not-a-uuid", 400, "invalid_event_id"),
        ("", 400, "invalid_event_id"),
        ("'; DROP TABLE portal_outboxevent; --", 400, "invalid_event_id"),
        ("0" * 10_000, 400, "invalid_event_id"),
        (str(uuid.UUID(int=7)), 404, "event_not_found"),
    ],
)
def test_requeue_refuses_garbage_and_unknown_ids(db, operator, event_id, status, code):
    event = failed_event()
    answer = operator.post(
        REQUEUE, {"event_id": event_id, "csrfmiddlewaretoken": csrf_of(operator)}
    )
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code
    assert OutboxEvent.objects.get(pk=event.pk).status == OutboxEvent.Status.FAILED


def test_requeue_refuses_a_pending_or_delivered_event(db, operator):
    token = csrf_of(operator)
    for status in (OutboxEvent.Status.PENDING, OutboxEvent.Status.DELIVERED):
        event = failed_event()
        OutboxEvent.objects.filter(pk=event.pk).update(status=status, attempts=3)
        answer = operator.post(REQUEUE, {"event_id": str(event.pk), "csrfmiddlewaretoken": token})
        assert answer.status_code == 409
        assert OutboxEvent.objects.get(pk=event.pk).attempts == 3  # untouched


def test_requeue_refuses_get_missing_csrf_non_staff_and_tokens(
    db, portal_storage, operator, viewer, django_user_model
):
    event = failed_event()
    body = {"event_id": str(event.pk)}
    got = operator.get(REQUEUE, body)
    assert got.status_code == 405
    assert got["Allow"] == "POST"
    assert operator.post(REQUEUE, body).status_code == 403  # no CSRF token
    # Staff without the change permission: the page is read-only, the POST refused.
    page = viewer.get("/status", HTTP_ACCEPT=HTML).content.decode()
    assert 'name="event_id"' not in page and "Read-only" in page
    refused = viewer.post(REQUEUE, {**body, "csrfmiddlewaretoken": csrf_of(viewer)})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "permission_denied")
    # An active user who is not staff, with the permission: still refused.
    member = django_user_model.objects.create_user("member", password="pw-member-123")
    member.user_permissions.add(Permission.objects.get(codename="change_outboxevent"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    assert client.post(REQUEUE, {**body, "csrfmiddlewaretoken": csrf_of(client)}).status_code == 403
    # Anonymous, and a monitoring token (read-only by design), even without CSRF checks.
    assert Client().post(REQUEUE, body).status_code == 401
    bearer = monitoring_bearer(django_user_model)
    assert Client().post(REQUEUE, body, **bearer).status_code == 403
    read_only = Client().get("/status", HTTP_ACCEPT=HTML, **bearer)
    assert read_only.status_code == 200
    assert 'name="event_id"' not in read_only.content.decode()
    assert OutboxEvent.objects.get(pk=event.pk).status == OutboxEvent.Status.FAILED


def test_json_form_keeps_its_exact_fields(db, portal_storage, operator):
    run("portal_cleanup", JobRun.Outcome.OK, timedelta(minutes=3))
    failed_event()
    body = operator.get("/status?format=json").json()
    assert set(body) == {"status", "checks", "jobs", "outbox", "disk"}
    assert set(body["jobs"]["portal_cleanup"]) == {
        "state",
        "last_success_at",
        "age_seconds",
        "max_age_seconds",
    }
    assert set(body["outbox"]) == {"state", "pending", "oldest_pending_age_seconds", "failed"}
    for disk in body["disk"].values():
        assert set(disk) == {
            "state",
            "free_bytes",
            "total_bytes",
            "refuse_new_uploads_below_bytes",
            "warn_below_bytes",
        }
