"""/status in a real browser: headless Chromium against gunicorn, driven by puppeteer-core.

An operator logs in, reads the page (human units, "ago", the runs tables, the SVG trend)
and presses Requeue on a failed event, which is pending again afterwards and logged as
``outbox.requeued``. The screenshot goes to the test's directory; with
``PORTAL_UPDATE_SCREENSHOT=1`` also to ``docs/status-page.png`` (the README's).

Needs ``chromium-headless-shell`` (Debian) or ``chromium``, ``node`` and puppeteer-core in
``PORTAL_NODE_MODULES`` (default ``.cache/node/node_modules``): ``.ci/run`` installs
them. Skipped when missing, failed when ``CI=true``.
"""

import json
import os
import re
import shutil
import subprocess
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from portal.models import IngestFile, JobRun, OutboxEvent, UploadSession
from tests.conftest import ROOT
from tests.processes import ServerProcess

pytestmark = pytest.mark.slow

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser")
DRIVER = ROOT / "tests" / "browser" / "status_page.mjs"
NODE_MODULES = os.environ.get("PORTAL_NODE_MODULES", str(ROOT / ".cache" / "node" / "node_modules"))
SCREENSHOT = ROOT / "docs" / "status-page.png"
PASSWORD = "pw-oncall-browser-123"


def missing(what):
    message = f"{what}; .ci/run installs it"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def tools():
    """(chromium, node) or skip/fail naming what is missing."""
    chromium = next(filter(None, map(shutil.which, BROWSERS)), None)
    if chromium is None:
        missing("no Chromium (apt-get install chromium-headless-shell)")
    node = shutil.which("node")
    if node is None:
        missing("no node (apt-get install nodejs)")
    if not os.path.isdir(os.path.join(NODE_MODULES, "puppeteer-core")):
        missing(f"no puppeteer-core in {NODE_MODULES} (npm install --prefix <dir> puppeteer-core)")
    return chromium, node


def seed(owner):
    """A day of a portal that is mostly fine: what an operator sees during an incident."""
    now = timezone.now()
    for hour in range(24):
        for n in range((hour * 7) % 5 + (3 if 8 <= (now - timedelta(hours=hour)).hour < 18 else 0)):
            size = (n + 1) * 37 * 1024**2
            file = IngestFile.objects.create(
                original_filename=f"scan-{hour}-{n}.tif",
                size_bytes=size,
                uploaded_by=owner,
                status=IngestFile.Status.STORED,
            )
            finished = now - timedelta(hours=hour, minutes=7 * n + 3)
            UploadSession.objects.create(
                file=file,
                owner=owner,
                status=UploadSession.Status.COMPLETE,
                chunk_size_bytes=8 * 1024**2,
                total_size_bytes=size,
                total_parts=size // (8 * 1024**2) + 1,
                expires_at=finished,
                finished_at=finished,
            )
    for minute in range(1, 61):
        failing = minute <= 20  # the runner has answered 503 for the last 20 minutes
        backlog = (21 - minute) * 3 if failing else minute % 3
        JobRun.objects.create(
            job="portal_dispatch",
            started_at=now - timedelta(minutes=minute),
            finished_at=now - timedelta(minutes=minute, seconds=-1),
            outcome=JobRun.Outcome.PARTIAL if failing and minute % 5 == 0 else JobRun.Outcome.OK,
            counts={
                "delivered": 0 if failing else 2,
                "retried": 3 if failing else 0,
                "backlog": backlog,
            },
            host="web-1",
        )
    for age, outcome, counts in (
        (
            4,
            JobRun.Outcome.OK,
            {"stale": {"sessions_expired": 2}, "orphans": {"objects_deleted": 9}},
        ),
        (
            19,
            JobRun.Outcome.FAILED,
            {"error": "StorageUnavailable: /srv/portal/var/temp: storage root is missing"},
        ),
        (34, JobRun.Outcome.OK, {"prune": {"sessions_pruned": 120}}),
    ):
        JobRun.objects.create(
            job="portal_cleanup",
            started_at=now - timedelta(minutes=age),
            finished_at=now - timedelta(minutes=age, seconds=-12),
            outcome=outcome,
            counts=counts,
            host="worker-2",
        )
    waiting = OutboxEvent.objects.bulk_create(
        OutboxEvent(
            event_type=OutboxEvent.FILE_UPLOADED,
            aggregate_id=str(uuid.uuid4()),
            payload={},
            idempotency_key=uuid.uuid4().hex,
            attempts=3,
            last_error="HTTP 503 Service Unavailable",
            next_attempt_at=now + timedelta(minutes=1),
        )
        for _ in range(60)
    )
    OutboxEvent.objects.filter(pk__in=[event.pk for event in waiting]).update(
        created_at=now - timedelta(minutes=20)
    )
    failed = []
    for n, error in enumerate(("HTTP 503 Service Unavailable", "TimeoutError: timed out")):
        failed.append(
            OutboxEvent.objects.create(
                event_type=OutboxEvent.FILE_UPLOADED,
                aggregate_id=str(uuid.uuid4()),
                payload={},
                idempotency_key=uuid.uuid4().hex,
                status=OutboxEvent.Status.FAILED,
                attempts=8,
                last_error=error,
                next_attempt_at=now - timedelta(minutes=3 + n),
            )
        )
    return failed


def test_operator_reads_the_page_and_requeues_in_chromium(
    subprocess_env, django_user_model, tmp_path, settings
):
    chromium, node = tools()
    operator = django_user_model.objects.create_superuser("oncall", password=PASSWORD)
    target, other = seed(operator)
    server = ServerProcess.gunicorn(subprocess_env, tmp_path)
    shot = tmp_path / "status.png"
    try:
        driven = subprocess.run(
            [
                node,
                str(DRIVER),
                f"http://127.0.0.1:{server.port}",
                "oncall",
                PASSWORD,
                str(target.pk),
                str(shot),
            ],
            env={**os.environ, "CHROMIUM": chromium, "NODE_PATH": NODE_MODULES},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.stop()
    assert driven.returncode == 0, driven.stderr + server.output()[-3000:]
    seen = json.loads(driven.stdout)

    assert seen["firstStatus"] == 200 and seen["loginUrl"].endswith("/admin/login/?next=/status")
    page = seen["before"]
    assert page["url"] == "/status"
    text = page["text"]
    assert "never ran: is the crontab installed?" in text  # portal_finalize
    assert re.search(r"last success [34] min( \d+ s)? ago, expected every 15 min\.", text)
    assert "the last run failed" not in text.split("portal_cleanup")[1].split("portal_finalize")[0]
    assert "StorageUnavailable: /srv/portal/var/temp" in text
    assert "2 event(s) gave up: fix the runner" in text
    assert "HTTP 503 Service Unavailable" in text and "TimeoutError: timed out" in text
    assert " ago" in text and "12 s" in text
    if settings.PORTAL_STORAGE == "local":
        assert "GiB of" in text and "% used" in text
    assert page["runRows"] == {
        "job-portal_cleanup": 3,
        "job-portal_dispatch": 10,
        "job-portal_finalize": 0,
    }
    assert [svg["bars"] for svg in page["svgs"]] == [24, 24, 60]
    assert all(svg["height"] > 50 for svg in page["svgs"])
    assert "busiest hour" in text and "stored in 24 h" in text
    assert "60 event(s) waiting after the last run" in text
    assert re.search(r"Pending\s+60\s+Oldest pending\s+20 min", text)
    assert all(hover.endswith("+00:00") for hover in page["hoverTimes"])
    assert page["requeueButtons"] == 2
    assert shot.stat().st_size > 20_000

    after = seen["after"]
    assert after["url"] == "/status#outbox"
    assert f"Event {target.pk} requeued" in after["text"]
    assert after["requeueButtons"] == 1
    target.refresh_from_db()
    other.refresh_from_db()
    assert (target.status, target.attempts) == (OutboxEvent.Status.PENDING, 0)
    assert other.status == OutboxEvent.Status.FAILED
    requeued = [r for r in server.records() if r.get("event") == "outbox.requeued"]
    assert [(r["event_id"], r["user"]) for r in requeued] == [(str(target.pk), "oncall")]
    assert requeued[0]["request_id"]

    if os.environ.get("PORTAL_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, SCREENSHOT)
