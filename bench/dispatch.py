"""Benchmark: ``portal_dispatch`` throughput against its floor, a bare keep-alive POST loop.

    .venv/bin/python bench/dispatch.py [--events 5000] [--database-url postgres://.../postgres]

Sets up a throwaway database (SQLite in a temp directory by default; with
``--database-url`` a fresh database created on that PostgreSQL server and dropped after),
N due ``file.uploaded`` events and a local runner answering 200 (``tests/runner.py`` in its
own process, HTTP/1.1 keep-alive). Then, in the same run:

- floor: the same N bodies POSTed by a bare ``http.client`` loop over one keep-alive
  connection (signatures computed beforehand: pure HTTP);
- dispatch: ``manage.py portal_dispatch`` as cron runs it (Prod configuration, JSON logs at
  INFO), timed inside the command (its reported ``duration_ms``) and as a whole process
  (including Python and Django start-up).

Floor and dispatch rounds alternate (``--rounds``, each dispatch round starting from N
due events again) so both see the same machine load; the best round of each counts.
Prints events/s for each and the ratio to the floor; the target is >= 0.5x. Exits non-zero
only when something is wrong (an event not delivered once, a bad signature).
"""

import argparse
import hashlib
import hmac
import http.client
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.lib.report import recording  # noqa: E402  (after the path is set)

PYTHON = sys.executable
SECRET = "bench-runner-secret"
USER_AGENT = "ingest-portal-dispatch/1"  # as portal.services.outbox sends it
TARGET = 0.5

from bench.lib.scratch import ScratchDatabase  # noqa: E402  (after the path is set)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3, help="dispatch rounds (best counts)")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server URL; the bench creates (and drops) its own database there",
    )
    parser.add_argument("--save", action="store_true", help="write the figures to docs/benchmarks/")
    return parser.parse_args()


class Runner:
    """``tests/runner.py`` in its own process, so it never shares a GIL with a client."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [PYTHON, str(ROOT / "tests" / "runner.py"), "--secret", SECRET, "--no-record"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = self.proc.stdout.readline().strip()
        parts = urlsplit(self.url)
        self.host, self.port, self.path = parts.hostname, parts.port, parts.path

    def stats(self):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        conn.request("GET", "/_stats")
        stats = json.loads(conn.getresponse().read())
        conn.close()
        return stats

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def django_env(database_url, workdir, runner_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "DJANGO_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "boot.settings",
            "DJANGO_CONFIGURATION": "Prod",
            "SECRET_KEY": "bench-secret-key",
            "ALLOWED_HOSTS": "localhost",
            "DATABASE_URL": database_url,
            "PORTAL_DATA_DIR": str(workdir),
            "PORTAL_LOG_FORMAT": "json",
            "PORTAL_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "info"),
            "PORTAL_RUNNER_ENDPOINT": runner_url,
            "PORTAL_RUNNER_AUTH_SECRET": SECRET,
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def seed_events(env, n):
    """``n`` due events shaped like finalize's; returns their exact bodies (as dispatch signs)."""
    os.environ.update(env)
    from configurations import importer

    importer.install()
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from portal.models import OutboxEvent
    from portal.services.outbox import payload_text

    now = timezone.now()
    events = []
    for i in range(n):
        event_id, file_id = uuid.uuid4(), uuid.uuid4()
        payload = {
            "event_type": "file.uploaded",
            "event_id": str(event_id),
            "occurred_at": now.isoformat(),
            "file": {
                "id": str(file_id),
                "filename": f"scan-{i:05d}.tiff",
                "content_type": "image/tiff",
                "size_bytes": 52_428_800 + i,
                "sha256": hashlib.sha256(file_id.bytes).hexdigest(),
                "storage": {
                    "backend": "s3",
                    "bucket": "ingest",
                    "key": f"2030/01/01/{file_id.hex}",
                },
            },
            "actor": {"user_id": 7, "username": "scanner-robot"},
        }
        events.append(
            OutboxEvent(
                id=event_id,
                event_type="file.uploaded",
                aggregate_id=str(file_id),
                idempotency_key=str(file_id),
                payload=payload,
                next_attempt_at=now,
            )
        )
    OutboxEvent.objects.bulk_create(events, batch_size=1000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # planner statistics, as autovacuum keeps on a live table
    rows = OutboxEvent.objects.annotate(body=payload_text()).values_list("id", "body")
    bodies = [(str(event_id), body.encode()) for event_id, body in rows]
    connection.close()
    return bodies


def delivered_count():
    from portal.models import OutboxEvent

    return OutboxEvent.objects.filter(status="delivered").count()


def floor_loop(runner, bodies):
    """The same POSTs (body and headers byte for byte, signed beforehand) over one
    keep-alive connection: (seconds, CPU seconds)."""
    prepared = [
        (
            body,
            {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "X-Portal-Event-Id": event_id,
                "X-Portal-Event-Type": "file.uploaded",
                "X-Portal-Attempt": "1",
                "X-Portal-Signature": "sha256="
                + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
            },
        )
        for event_id, body in bodies
    ]
    conn = http.client.HTTPConnection(runner.host, runner.port, timeout=10)
    cpu_started = time.process_time()
    started = time.perf_counter()
    for body, headers in prepared:
        conn.request("POST", runner.path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"floor: runner answered {response.status}")
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    conn.close()
    return elapsed, cpu


def run_dispatch(env, log_path):
    """``portal_dispatch --json`` as cron runs it, its JSON log going to a file.

    Returns (in-command seconds, whole-process seconds, CPU seconds, summary).
    """
    cpu_before = _children_cpu()
    started = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.run(
            [PYTHON, "manage.py", "portal_dispatch", "--json"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    wall = time.perf_counter() - started
    cpu = _children_cpu() - cpu_before
    if proc.returncode != 0:
        raise SystemExit(f"portal_dispatch exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    lines = [json.loads(line) for line in Path(log_path).read_text().splitlines()]
    [summary] = [line for line in lines if "level" not in line]
    return summary["duration_ms"] / 1000, wall, cpu, summary


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def reset_events():
    """Make every event due again, as if never sent: the next round starts from scratch."""
    from django.db import connection
    from django.utils import timezone

    from portal.models import OutboxEvent

    OutboxEvent.objects.update(
        status="pending", attempts=0, next_attempt_at=timezone.now(), delivered_at=None
    )
    connection.close()


def measure(runner, env, bodies, rounds, workdir):
    """Alternate floor and dispatch rounds so both see the same machine load."""
    n = len(bodies)
    floors, dispatches = [], []
    for round_number in range(rounds):
        if round_number:
            reset_events()
        floors.append(floor_loop(runner, bodies))
        in_command, wall, cpu, summary = run_dispatch(env, workdir / f"dispatch-{round_number}.log")
        delivered = delivered_count()
        if summary["delivered"] != n or delivered != n:
            raise SystemExit(f"bench: round {round_number}: not all delivered: {summary}")
        dispatches.append((in_command, wall, cpu))
    floors.append(floor_loop(runner, bodies))
    stats = runner.stats()
    expected = (2 * rounds + 1) * n
    if stats["requests"] != expected or stats["bad_signatures"]:
        raise SystemExit(f"bench: runner saw {stats}, expected {expected} good requests")
    return floors, dispatches


def main():
    args = parse_args()
    n = args.events
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as tmp:
        workdir = Path(tmp)
        runner = Runner()
        database = ScratchDatabase(args.database_url, workdir, prefix="dispatch")
        try:
            env = django_env(database.url, workdir, runner.url)
            subprocess.run(
                [PYTHON, "manage.py", "migrate", "--no-input", "-v", "0"],
                cwd=ROOT,
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            bodies = seed_events(env, n)
            floors, dispatches = measure(runner, env, bodies, args.rounds, workdir)
        finally:
            from django.db import connections

            connections.close_all()
            database.drop()
            runner.stop()
    report(n, database.name, args.rounds, floors, dispatches)


def report(n, database_name, rounds, floors, dispatches):
    def rates(seconds):
        return ", ".join(f"{n / s:.0f}" for s in seconds)

    floor = n / min(elapsed for elapsed, _ in floors)
    dispatched = n / min(in_command for in_command, _, _ in dispatches)
    wall = min(wall for _, wall, _ in dispatches)
    floor_cpu = min(cpu for _, cpu in floors) / n * 1e6
    dispatch_cpu = min(cpu for _, _, cpu in dispatches) / n * 1e6
    print(f"bench/dispatch.py: {n} due events, {database_name}, runner on loopback (HTTP/1.1)")
    print(
        f"  floor, bare http.client keep-alive loop:   {floor:6.0f} events/s"
        f"  (best of {rounds + 1}: {rates(e for e, _ in floors)})"
    )
    print(
        f"  portal_dispatch, inside the command:       {dispatched:6.0f} events/s"
        f"  ratio {dispatched / floor:.2f}x, target >= {TARGET}x"
        f"{'' if dispatched / floor >= TARGET else ' (BELOW TARGET)'}"
        f"  (best of {rounds}: {rates(d for d, _, _ in dispatches)})"
    )
    print(
        f"  portal_dispatch, whole process (start-up): {n / wall:6.0f} events/s"
        f"  ratio {n / wall / floor:.2f}x  ({wall:.2f} s)"
    )
    print(
        f"  CPU per event: dispatcher process {dispatch_cpu:.0f} us (start-up included),"
        f" floor client {floor_cpu:.0f} us"
    )


if __name__ == "__main__":
    with recording("dispatch", save="--save" in sys.argv):
        main()
