"""Benchmark what one /metrics scrape costs the database, at two table sizes in one run.

The figures are read at scrape time (``portal.metrics.figures``), so their cost must not
grow with history: completed sessions and delivered events pile up until their
retention, and a busy portal has millions. The bench seeds two throwaway databases with
the same fixed "live" set (open and failed sessions, temp objects, a pending backlog,
job runs) and N rows of history in the outbox and session tables (complete sessions
with a reclaimed part each, delivered events): 10k in one, 1M in the other. One child
process per database scrapes it, and the two take turns scrape by scrape, so the load of
other processes on the machine falls on both alike. Then the large database gets a
pending backlog larger than the count cap (a runner down for hours) and both are
measured again: the bound with the caps reached.

A scrape is the ``/metrics`` view called in-process with the token, the collector's
cache cleared, timed and its SQL statements counted. Seeding is raw SQL (a recursive CTE
on SQLite, ``generate_series`` on PostgreSQL, then ``VACUUM ANALYZE`` as autovacuum
would; SQLite gets no ``ANALYZE``, as in production). ``--explain`` prints each
statement's plan on the large database.

Usage: ``python bench/metrics.py [--small N] [--large N] [--rounds 40] [--backlog N]
[--database-url postgres://…/postgres] [--explain] [--save]`` (it creates and drops its
own databases there). Target: large/small flat (<= 1.5x), the same number of queries.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.lib.report import recording  # noqa: E402  (after the path is set)
from bench.lib.scratch import ScratchDatabase  # noqa: E402

TOKEN = "bench-metrics-token-0123456789abcdef"
CHUNK = 100_000


def setup_django(database_url, data_dir):
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "boot.settings",
            "DJANGO_CONFIGURATION": "Test",
            "DATABASE_URL": database_url,
            "PORTAL_DATA_DIR": str(data_dir),
            "PORTAL_LOG_LEVEL": "warning",
            "PORTAL_METRICS_TOKEN": TOKEN,
        }
    )
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    from configurations import importer

    importer.install()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


class Seeder:
    """History and live rows by raw SQL; ids are derived from a row number."""

    def __init__(self):
        from django.contrib.auth import get_user_model
        from django.db import connection
        from django.utils import timezone

        self.connection = connection
        self.sqlite = connection.vendor == "sqlite"
        self.now = timezone.now()
        self.owner = get_user_model().objects.create(username="bench-owner").pk
        self.history = 0
        self.serial = 0

    def uuid(self, kind):
        # kind: one hex digit, so the ids of files, sessions and events never collide.
        if self.sqlite:
            return f"printf('{kind}%031x', x)"
        return f"('{kind}' || lpad(to_hex(x), 31, '0'))::uuid"

    def numbers(self, start, count):
        """A ``FROM`` source of the row numbers start .. start+count-1 as column ``x``."""
        end = start + count - 1
        if self.sqlite:
            step = f"SELECT x + 1 FROM n WHERE x < {end}"
            return f"(WITH RECURSIVE n(x) AS (SELECT {start} UNION ALL {step}) SELECT x FROM n)"
        return f"generate_series({start}, {end}) AS g(x)"

    def seconds_ago(self, expression):
        """SQL for ``now - expression seconds`` as the column's type."""
        now = self.now.strftime("%Y-%m-%d %H:%M:%S.%f")
        if self.sqlite:
            modifier = f"(-({expression})) || ' seconds'"
            return f"strftime('%Y-%m-%d %H:%M:%f', '{now}', {modifier})"
        return f"(timestamptz '{now}+00' - ({expression}) * interval '1 second')"

    def run(self, sql):
        with self.connection.cursor() as cursor:
            cursor.execute(sql)

    def sessions(self, count, *, status, file_status, expires, finished, parts, temp):
        """``count`` sessions (and files, and ``parts`` parts each) with the given state."""
        start = self.serial + 1
        self.serial += count
        rows = self.numbers(start, count)
        finished_at = self.seconds_ago(finished) if finished is not None else "NULL"
        self.run(
            "INSERT INTO portal_ingestfile (id, original_filename, content_type, size_bytes, "
            "sha256, status, storage_key, uploaded_by_id, created_at, updated_at, stored_at) "
            f"SELECT {self.uuid('a')}, 'bench.bin', 'application/octet-stream', 1048576, '', "
            f"'{file_status}', '', {self.owner}, {self.seconds_ago('x')}, {self.seconds_ago('x')}, "
            f"NULL FROM {rows}"
        )
        self.run(
            "INSERT INTO portal_uploadsession (id, file_id, owner_id, status, chunk_size_bytes, "
            "total_size_bytes, total_parts, bytes_received, completed_parts, idempotency_key, "
            "expires_at, failure_reason, created_at, updated_at, finished_at, assembly_attempts, "
            "assembled_bytes, assembly_upload_id, hashed_parts) "
            f"SELECT {self.uuid('b')}, {self.uuid('a')}, {self.owner}, '{status}', 262144, "
            f"{4 * 262144}, 4, {parts * 262144}, {parts}, '', {self.seconds_ago(expires)}, '', "
            f"{self.seconds_ago('x')}, {self.seconds_ago('x')}, {finished_at}, 0, 0, '', 0 "
            f"FROM {rows}"
        )
        for number in range(1, parts + 1):
            key = f"'ab/' || x || '-{number}'" if temp else "''"
            self.run(
                "INSERT INTO portal_uploadpart (session_id, part_number, size_bytes, sha256, "
                f"temp_key, md5, created_at) SELECT {self.uuid('b')}, {number}, 262144, '', "
                f"{key}, '', {self.seconds_ago('x')} FROM {rows}"
            )

    def events(self, count, *, status, due, delivered):
        start = self.serial + 1
        self.serial += count
        payload = "'{}'" if self.sqlite else "'{}'::jsonb"
        delivered_at = self.seconds_ago(delivered) if delivered is not None else "NULL"
        self.run(
            "INSERT INTO portal_outboxevent (id, event_type, aggregate_id, payload, "
            "idempotency_key, status, attempts, next_attempt_at, last_error, delivered_at, "
            "created_at, updated_at) "
            f"SELECT {self.uuid('c')}, 'file.uploaded', 'f' || x, {payload}, 'k' || x, "
            f"'{status}', 1, {self.seconds_ago(due)}, '', {delivered_at}, "
            f"{self.seconds_ago('x')}, {self.seconds_ago('x')} FROM {self.numbers(start, count)}"
        )

    # (count, session status, file status, expires in s ago, finished s ago, parts, temp)
    LIVE_SESSIONS = (
        (50, "in_progress", "uploading", "-3600", None, 2, True),
        (5, "init", "uploading", "600", None, 0, False),
        (20, "failed", "failed", "90000", "86400", 0, False),
        (3, "aborted", "failed", "600", "300", 2, True),
    )

    def live_set(self):
        """The same in every size: what a working portal has open at any moment."""
        from portal.models import JobRun

        for count, status, file_status, expires, finished, parts, temp in self.LIVE_SESSIONS:
            self.sessions(
                count,
                status=status,
                file_status=file_status,
                expires=expires,
                finished=finished,
                parts=parts,
                temp=temp,
            )
        self.events(100, status="pending", due="x % 600 - 300", delivered=None)
        self.events(5, status="sending", due="-60", delivered=None)
        self.events(3, status="failed", due="86400", delivered=None)
        runs = []
        for minute in range(2000):  # cleanup every 15 minutes, dispatch in between
            started = self.now - timedelta(minutes=minute)
            cleanup = minute % 15 == 0
            job, counts = (
                ("portal_cleanup", {"stale": {"sessions_expired": 1}})
                if cleanup
                else ("portal_dispatch", {"delivered": 3})
            )
            ended = started + timedelta(seconds=5)
            runs.append(JobRun(job=job, started_at=started, finished_at=ended, outcome="ok"))
            runs[-1].counts = counts
        JobRun.objects.bulk_create(runs, batch_size=1000)

    def grow_history(self, total):
        """Complete sessions (one reclaimed part each) and delivered events, up to ``total``."""
        while self.history < total:
            count = min(CHUNK, total - self.history)
            self.sessions(
                count,
                status="complete",
                file_status="stored",
                expires="x",
                finished="x",
                parts=1,
                temp=False,
            )
            self.events(count, status="delivered", due="x", delivered="x")
            self.history += count
        self.analyze()

    def backlog(self, count):
        for start in range(0, count, CHUNK):
            self.events(min(CHUNK, count - start), status="pending", due="x % 3600", delivered=None)
        self.analyze()

    def analyze(self):
        if not self.sqlite:
            self.run("VACUUM ANALYZE")


def scrape_once():
    """One scrape through the view, cache cleared: (seconds, SQL statements, body bytes)."""
    from django.db import connection
    from django.test import RequestFactory

    from portal.metrics import collector, views

    queries = [0]

    def count(execute, sql, params, many, context):
        queries[0] += 1
        return execute(sql, params, many, context)

    request = RequestFactory().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    collector.collector.clear()
    started = time.perf_counter()
    with connection.execute_wrapper(count):
        response = views.metrics(request)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    return elapsed, queries[0], len(response.content)


def explain():
    """The plan of every statement of one scrape (``--explain``)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from portal.metrics import collector

    collector.collector.clear()
    with CaptureQueriesContext(connection) as captured:
        collector.collector.collect()
    for query in captured.captured_queries:
        sqlite = connection.vendor == "sqlite"
        prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) "
        with connection.cursor() as cursor:
            cursor.execute(prefix + query["sql"])
            plan = " | ".join(str(row[-1]).strip() for row in cursor.fetchall())
        print(f"  {query['time']} s  {query['sql'][:150]}\n      -> {plan[:600]}")


class Child:
    """A process holding Django on one database; it seeds and scrapes when told (JSON lines).

    Two children, one per table size, take turns scrape by scrape, so load from other
    processes on the machine falls on both sizes alike.
    """

    def __init__(self, database_url, workdir):
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--child", database_url, str(workdir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, command, *args):
        self.proc.stdin.write(json.dumps([command, *args]) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"bench child died on {command}")
        return json.loads(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def serve(database_url, workdir):
    """The child's loop: one command per stdin line, one JSON answer per stdout line."""
    setup_django(database_url, Path(workdir))
    seeder = Seeder()
    commands = {
        "live": lambda: seeder.live_set(),
        "grow": seeder.grow_history,
        "backlog": seeder.backlog,
        "scrape": scrape_once,
        "explain": explain,
    }
    real_stdout = sys.stdout
    for line in sys.stdin:
        command, *args = json.loads(line)
        sys.stdout = sys.stderr  # anything printed goes to the terminal, not the protocol
        try:
            answer = commands[command](*args)
        finally:
            sys.stdout = real_stdout
        real_stdout.write(json.dumps(answer) + "\n")
        real_stdout.flush()
    from django.db import connections

    connections.close_all()


def interleaved(children, rounds):
    """Scrape each child once per round, in turn; per child: median/p90/min ms, queries."""
    for child in children:
        child.ask("scrape")  # warm: connections, imports
    runs = [[] for _ in children]
    for _ in range(rounds):
        for child, result in zip(children, runs, strict=True):
            result.append(child.ask("scrape"))
    return [summary(result) for result in runs]


def summary(result):
    times = sorted(run[0] * 1000 for run in result)
    median, p90 = statistics.median(times), times[int(0.9 * (len(times) - 1))]
    return {"median_ms": median, "p90_ms": p90, "min_ms": times[0], "queries": result[0][1]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--backlog", type=int, default=50_000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--save", action="store_true", help="write the figures to docs/benchmarks/")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        serve(*args.child)
        return
    with recording("metrics", save=args.save):
        run(args)


def run(args):
    databases, children = [], []
    try:
        for size in (args.small, args.large):
            workdir = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
            databases.append(ScratchDatabase(args.database_url, workdir, prefix="metrics"))
            children.append(Child(databases[-1].url, workdir))
            started = time.monotonic()
            children[-1].ask("live")
            children[-1].ask("grow", size)
            took = time.monotonic() - started
            print(f"seeded {size:,} history rows per table in {took:.0f} s", flush=True)
        small, large = interleaved(children, args.rounds)
        results = [(f"{args.small:,}", small), (f"{args.large:,}", large)]
        if args.explain:
            children[1].ask("explain")
        if args.backlog:
            children[1].ask("backlog", args.backlog)
            small, backlog = interleaved(children, args.rounds)
            label = f"{args.large:,} + {args.backlog:,} pending events"
            results += [(f"{args.small:,} (again)", small), (label, backlog)]
    finally:
        for child in children:
            child.close()
        for database in databases:
            database.drop()
    report(databases[0].name.split(" (")[0], results, args.rounds)


def report(name, results, rounds):
    base = results[0][1]
    print(f"\n{name}: one /metrics scrape (figures read from the database, cache cleared),")
    print(f"{rounds} rounds, small and large scraped in turn\n")
    print("| history rows per table | median ms | p90 ms | min ms | SQL queries | vs small |")
    print("|---|---|---|---|---|---|")
    for index, (label, r) in enumerate(results):
        reference = results[index - 1][1] if index % 2 else r
        ratio = r["median_ms"] / reference["median_ms"]
        times = f"{r['median_ms']:.2f} | {r['p90_ms']:.2f} | {r['min_ms']:.2f}"
        print(f"| {label} | {times} | {r['queries']} | {ratio:.2f}x |")
    large = results[1][1]
    flat = large["median_ms"] <= 1.5 * base["median_ms"] and large["queries"] == base["queries"]
    print(f"\n  {'OK    ' if flat else 'MISSED'} flat: large <= 1.5x small, same number of queries")


if __name__ == "__main__":
    main()
