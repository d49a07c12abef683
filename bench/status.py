"""Benchmark the server time of the /status page (HTML) at two history sizes.

The page reads the health checks' figures, each job's last runs, the failed outbox
events and the trend (``portal.services.status``): none of it may grow with history. Two
throwaway databases get the same live set as ``bench/metrics.py`` (open sessions, a
pending backlog, failed events, 2,000 job runs) plus N rows of history in each of the
session, outbox and job-run tables (complete sessions finished one per second back in
time, so the last 24 h hold 86,400 of them when N >= 86,400; delivered events; dispatch
runs one per minute back in time): 10k in one, 1M in the other. One child process per
database requests the page through the whole middleware stack (``django.test.Client``, a
staff session), timed, its SQL statements on the request's connection counted; the JSON
form (the health checks alone) is timed in the same rounds as the floor, and the page
with the process's cache emptied (its first view) a few times more.

Usage: ``python bench/status.py [--small N] [--large N] [--rounds 30]
[--database-url postgres://…/postgres] [--save]``. Target: the large median under 100 ms,
the same number of queries at both sizes.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.lib.report import recording  # noqa: E402  (after the path is set)
from bench.lib.scratch import ScratchDatabase  # noqa: E402
from bench.metrics import CHUNK, Seeder, setup_django  # noqa: E402

TARGET_MS = 100


def grow_job_runs(seeder, total):
    """``total`` dispatch runs, one a minute before the live set's 2,000, with counts."""
    payload = '\'{"delivered": 3, "backlog": 1}\''
    if not seeder.sqlite:
        payload += "::jsonb"
    for start in range(0, total, CHUNK):
        count = min(CHUNK, total - start)
        ago = seeder.seconds_ago("(x + 2000) * 60")
        seeder.run(
            "INSERT INTO portal_jobrun (job, started_at, finished_at, outcome, counts, host) "
            f"SELECT 'portal_dispatch', {ago}, {ago}, 'ok', {payload}, 'web-1' "
            f"FROM {seeder.numbers(start + 1, count)}"
        )
    seeder.analyze()


def measure(database_url, workdir, size, rounds):
    """Seed one database and time ``rounds`` page requests (after one warm-up)."""
    workdir = Path(workdir)
    for prefix in ("temp", "final"):
        (workdir / prefix).mkdir(parents=True, exist_ok=True)
    setup_django(database_url, workdir)
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client

    started = time.monotonic()
    seeder = Seeder()
    seeder.live_set()
    seeder.grow_history(size)
    grow_job_runs(seeder, size)
    seeded = time.monotonic() - started

    client = Client()
    client.force_login(get_user_model().objects.create_user("bench-ops", is_staff=True))
    queries = [0]

    def count(execute, sql, params, many, context):
        queries[0] += 1
        return execute(sql, params, many, context)

    cpu = []

    def timed(path, **headers):
        queries[0] = 0
        began, began_cpu = time.perf_counter(), time.process_time()
        with connection.execute_wrapper(count):
            response = client.get(path, HTTP_HOST="localhost", **headers)
        assert response.status_code == 200, response.status_code
        cpu.append((time.process_time() - began_cpu) * 1000)
        return (time.perf_counter() - began) * 1000, queries[0], response

    page, page_cpu, checks, cold = [], [], [], []
    timed("/status", HTTP_ACCEPT="text/html")  # warm-up: connections, templates, the trend
    for _ in range(rounds):
        checks.append(timed("/status?format=json")[0])
        elapsed, statements, response = timed("/status", HTTP_ACCEPT="text/html")
        page.append(elapsed)
        page_cpu.append(cpu[-1])
        assert b"<svg" in response.content
    for _ in range(max(rounds // 4, 3)):
        cache.clear()  # a new process: the 24 h of uploads counted again
        cold.append(timed("/status", HTTP_ACCEPT="text/html")[0])
    return {
        "seeded_s": seeded,
        **stats(page),
        "cpu_ms": statistics.median(page_cpu),
        "checks_ms": statistics.median(checks),
        "cold_ms": statistics.median(cold),
        "queries": statements,
        "bytes": len(response.content),
    }


def stats(times):
    times = sorted(times)
    return {
        "median_ms": statistics.median(times),
        "p90_ms": times[int(0.9 * (len(times) - 1))],
        "min_ms": times[0],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--save", action="store_true", help="write the figures to docs/benchmarks/")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, workdir, size, rounds = args.child
        print(json.dumps(measure(url, workdir, int(size), int(rounds))))
        return
    with recording("status", save=args.save):
        run(args)


def run(args):
    results = []
    for size in (args.small, args.large):
        workdir = Path(tempfile.mkdtemp(prefix="bench-status-"))
        database = ScratchDatabase(args.database_url, workdir, prefix="status")
        argv = [sys.executable, __file__, "--child", database.url, str(workdir), str(size)]
        try:
            child = subprocess.run(
                [*argv, str(args.rounds)],
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            database.drop()
        if child.returncode:
            raise SystemExit(f"bench child failed:\n{child.stderr[-3000:]}")
        result = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"seeded {size:,} history rows per table in {result['seeded_s']:.0f} s", flush=True)
        results.append((size, result))
    print(f"\n{database.name.split(' (')[0]}: one /status page (HTML, staff session, the whole")
    print(f"middleware stack), {args.rounds} requests after a warm-up; 'checks' is the JSON")
    print("form (the health checks alone, the floor), 'first view' the page with the")
    print("process's cache empty (the 24 h of uploads counted, not only the current hour),")
    print("'CPU' the page's CPU time in this process (all its threads; not the database's)")
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    print(
        "| history rows per table | median ms | p90 ms | min ms | CPU ms | checks ms "
        "| first view ms | SQL queries | page KiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for size, r in results:
        times = f"{r['median_ms']:.1f} | {r['p90_ms']:.1f} | {r['min_ms']:.1f}"
        extra = f"{r['cpu_ms']:.1f} | {r['checks_ms']:.1f} | {r['cold_ms']:.1f}"
        print(f"| {size:,} | {times} | {extra} | {r['queries']} | {r['bytes'] / 1024:.0f} |")
    (_, small), (_, large) = results
    fast = large["median_ms"] < TARGET_MS
    same = large["queries"] == small["queries"]
    print(f"\n  {'OK    ' if fast else 'MISSED'} large median < {TARGET_MS} ms")
    print(f"  {'OK    ' if same else 'MISSED'} the same number of queries at both sizes")


if __name__ == "__main__":
    main()
