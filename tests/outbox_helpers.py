"""The outbox tests' shared parts: the runner's secret, settings that point the dispatcher
at a test runner, and events shaped like finalize's (the ``runner`` and
``runner_settings`` fixtures in ``conftest.py`` use them)."""

import uuid

from django.utils import timezone

from portal.models import IngestFile, OutboxEvent
from portal.services import outbox

SECRET = "runner-secret-do-not-log-7f3a"


def point_at_runner(settings, runner):
    """Point the dispatcher at the test runner with short timeouts and few attempts."""
    settings.PORTAL_RUNNER_ENDPOINT = runner.url
    settings.PORTAL_RUNNER_AUTH_SECRET = SECRET
    settings.PORTAL_RUNNER_TIMEOUT_SECONDS = 2.0
    settings.PORTAL_OUTBOX_BASE_DELAY_SECONDS = 10.0
    settings.PORTAL_OUTBOX_MAX_DELAY_SECONDS = 60.0
    settings.PORTAL_OUTBOX_MAX_ATTEMPTS = 4
    return settings


def config():
    return outbox.DispatchConfig.from_settings()


def make_events(n, *, due=None, **fields):
    """``n`` due ``file.uploaded`` events shaped like finalize's (bulk, no files needed)."""
    due = due or timezone.now()
    events = []
    for _ in range(n):
        event_id, file_id = uuid.uuid4(), uuid.uuid4()
        payload = {
            "event_type": OutboxEvent.FILE_UPLOADED,
            "event_id": str(event_id),
            "occurred_at": due.isoformat(),
            "file": {"id": str(file_id), "filename": "x.bin", "size_bytes": 1},
        }
        events.append(
            OutboxEvent(
                id=event_id,
                event_type=OutboxEvent.FILE_UPLOADED,
                aggregate_id=str(file_id),
                idempotency_key=str(file_id),
                payload=payload,
                next_attempt_at=due,
                **fields,
            )
        )
    return OutboxEvent.objects.bulk_create(events)


def stored_file(user):
    return IngestFile.objects.create(
        original_filename="report.pdf",
        content_type="application/pdf",
        size_bytes=1234,
        sha256="ab" * 32,
        status=IngestFile.Status.STORED,
        storage_key="2030/01/01/abc",
        uploaded_by=user,
        stored_at=timezone.now(),
    )


def reload(event):
    return OutboxEvent.objects.get(pk=event.pk)
