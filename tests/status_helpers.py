"""Set-ups the /status tests share: rows the page reports (runs, events, uploads), the page
as text, and ``fresh_probe_cache``, an autouse fixture a module opts into by importing it."""

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from portal.health import executor as probes
from portal.models import IngestFile, JobRun, OutboxEvent, UploadSession

HTML = "text/html,application/xhtml+xml"
NOW = datetime(2026, 12, 7, 14, 30, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"
MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def fresh_probe_cache(settings):
    settings.PORTAL_READY_CACHE_SECONDS = 0
    probes.results.clear()
    cache.clear()
    yield
    probes.results.clear()
    cache.clear()


def make_staff(django_user_model, name, *, can_change=False):
    staff = django_user_model.objects.create_user(name, password=f"pw-{name}-123", is_staff=True)
    if can_change:
        staff.user_permissions.add(Permission.objects.get(codename="change_outboxevent"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    return client


def run(job, outcome, age, *, took=timedelta(seconds=2), counts=None, host="web-1"):
    started = timezone.now() - age
    return JobRun.objects.create(
        job=job,
        started_at=started,
        finished_at=started + took,
        outcome=outcome,
        counts=counts or {},
        host=host,
    )


def failed_event(error="HTTP 503 Service Unavailable", key=None):
    return OutboxEvent.objects.create(
        event_type=OutboxEvent.FILE_UPLOADED,
        aggregate_id=str(uuid.uuid4()),
        payload={},
        idempotency_key=key or uuid.uuid4().hex,
        status=OutboxEvent.Status.FAILED,
        attempts=8,
        last_error=error,
        next_attempt_at=timezone.now() - timedelta(minutes=5),
    )


def pending_event(at):
    with time_machine.travel(at, tick=False):
        return OutboxEvent.objects.create(
            event_type=OutboxEvent.FILE_UPLOADED,
            aggregate_id=str(uuid.uuid4()),
            payload={},
            idempotency_key=uuid.uuid4().hex,
            next_attempt_at=timezone.now(),
        )


def text_of(page):
    """The page as a browser shows it: the tags gone, the words left."""
    return re.sub(r"<[^>]+>", "", page.content.decode())


def completed_upload(owner, finished_at, size, status=UploadSession.Status.COMPLETE):
    file = IngestFile.objects.create(
        original_filename="x.bin", size_bytes=size, uploaded_by=owner, status="stored"
    )
    return UploadSession.objects.create(
        file=file,
        owner=owner,
        status=status,
        chunk_size_bytes=size,
        total_size_bytes=size,
        total_parts=1,
        expires_at=finished_at,
        finished_at=finished_at,
        idempotency_key=uuid.uuid4().hex,
    )


def dispatch_run(started_at, backlog, outcome=JobRun.Outcome.OK):
    return JobRun.objects.create(
        job="portal_dispatch",
        started_at=started_at,
        finished_at=started_at,
        outcome=outcome,
        counts={"delivered": 0, "backlog": backlog},
    )


def disk(state="ok", free=50 * MIB, total=100 * MIB, warn=20 * MIB, refuse=10 * MIB):
    return {
        "state": state,
        "free_bytes": free,
        "total_bytes": total,
        "warn_below_bytes": warn,
        "refuse_new_uploads_below_bytes": refuse,
    }


REQUEUE = "/status/outbox/requeue"


def csrf_of(client):
    """A valid CSRF token for ``client``: the page's when it shows a form, else one made up
    as any form of the site would hand out (a refusal must not be the CSRF check's)."""
    client.get("/status", HTTP_ACCEPT=HTML)
    if "csrftoken" not in client.cookies:
        client.cookies["csrftoken"] = "s" * 32
    return client.cookies["csrftoken"].value


def monitoring_bearer(django_user_model):
    """The ``Authorization`` of a new monitoring token (it reads /status and /metrics)."""
    from portal.models import ApiToken
    from portal.services.tokens import create_token

    owner = django_user_model.objects.create_user("monitor")
    raw = create_token(owner, name="monitor", purpose=ApiToken.Purpose.MONITORING)[1]
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
