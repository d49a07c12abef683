"""The three ways ``bench/cleanup.py`` cleans the same seed, each run in a child process.

portal_cleanup  ``manage.py portal_cleanup`` (all four steps, batched service)
per-row loop    django-chunked-upload's ``delete_expired_uploads`` style
floor           four hand-written SQL statements and a tight ``os.unlink`` loop
"""

import contextlib
import json
import os


def run_portal_cleanup():
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("portal_cleanup", "--json", stdout=out)
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    steps = summary["steps"]
    return {
        "objects_deleted": steps["orphans"]["counts"]["objects_deleted"],
        "delete_requests": steps["orphans"]["counts"]["delete_requests"],
        "failed": summary["failed"],
        "steps_s": {name: step["duration_ms"] / 1000 for name, step in steps.items()},
    }


def run_per_row_loop():
    """The shape of django-chunked-upload's ``delete_expired_uploads``, on our models."""
    from django.utils import timezone

    from portal import storage
    from portal.models import UploadSession

    now = timezone.now()
    temp = storage.temp_storage()
    expired = UploadSession.objects.filter(
        status__in=UploadSession.OPEN_STATUSES, expires_at__lt=now
    ).select_related("file")
    for session in expired:
        session.status = UploadSession.Status.FAILED
        session.failure_reason = "expired"
        session.finished_at = now
        session.save()
        session.file.status = "failed"
        session.file.save()
        for part in session.parts.all():
            if part.temp_key:
                temp.delete(part.temp_key)
                part.temp_key = ""
                part.save()


def run_floor():
    """Four statements and an unlink loop: the least work that does the same cleanup."""
    from django.db import connection, transaction
    from django.utils import timezone

    from portal import storage

    now = timezone.now()
    root = storage.temp_storage().location
    terminal = "SELECT id FROM portal_uploadsession WHERE status IN ('complete','failed','aborted')"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE portal_uploadsession SET status='failed', failure_reason='expired', "
            "finished_at=%s WHERE status IN ('init','in_progress') AND expires_at < %s",
            [now, now],
        )
        cursor.execute(
            "UPDATE portal_ingestfile SET status='failed' WHERE id IN (SELECT file_id FROM "
            "portal_uploadsession WHERE status='failed' AND finished_at=%s)",
            [now],
        )
        cursor.execute(
            "SELECT temp_key FROM portal_uploadpart WHERE temp_key <> '' "
            f"AND session_id IN ({terminal})"
        )
        keys = [row[0] for row in cursor.fetchall()]
    for key in keys:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(root, key))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE portal_uploadpart SET temp_key='' WHERE temp_key <> '' "
            f"AND session_id IN ({terminal})"
        )


VARIANTS = {"portal_cleanup": run_portal_cleanup, "per_row": run_per_row_loop, "floor": run_floor}
