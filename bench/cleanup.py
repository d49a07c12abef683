"""Benchmark ``portal_cleanup`` against the per-row ORM loop and a hand-written floor.

Each variant gets an identical fresh seed: N expired sessions x 4 parts with real 64-byte
temp files, plus N/10 live sessions (4 parts each) that must survive. Each variant runs in
its own process (Django start-up included for all), and the parent records its wall
time; the child counts its SQL statements and reports its peak RSS (``VmHWM``).

  portal_cleanup  ``manage.py portal_cleanup`` (all four steps, batched service)
  per-row loop    django-chunked-upload's ``delete_expired_uploads`` style: iterate the
                  expired sessions, save each, delete each temp file, save each part
                  (on the same N; ``--per-row-n`` runs it on fewer and extrapolates)
  floor           four hand-written SQL statements and a tight ``os.unlink`` loop

Usage: ``python bench/cleanup.py [--n 100000] [--database-url postgres://.../test]`` (the
bench creates and drops its own database on that server);
``--storage s3`` runs ``portal_cleanup`` alone against a moto server and reports the
DeleteObjects requests per object. Targets: <= 1.5x the floor, >= 20x faster than the
per-row loop, peak RSS < 150 MB and flat as N grows 10x, on S3 <= 1 request per 900 objects.
"""

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.lib.report import recording  # noqa: E402  (after the path is set)
from bench.lib.scratch import ScratchDatabase  # noqa: E402  (after the path is set)

CHILD = r"""
import json, os, sys, time
sys.path.insert(0, os.environ["BENCH_ROOT"])
from configurations import importer
importer.install()
import django
django.setup()
from django.db import connection
queries = 0
def count(execute, sql, params, many, context):
    global queries
    queries += 1
    return execute(sql, params, many, context)
from bench.lib.cleanup_variants import VARIANTS
with connection.execute_wrapper(count):
    extra = VARIANTS[sys.argv[1]]()
# VmHWM: this process's own peak RSS since exec (ru_maxrss would include the forked parent).
with open("/proc/self/status") as status:
    hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print("BENCH " + json.dumps({"queries": queries, "hwm_kb": hwm, **(extra or {})}), flush=True)
"""


class Bench:
    def __init__(self, args):
        self.args = args
        self.data_dir = Path(tempfile.mkdtemp(prefix="bench-cleanup-"))
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "AWS_", "DJANGO_"))
        }
        self.env.update(
            {
                "DJANGO_SETTINGS_MODULE": "boot.settings",
                "DJANGO_CONFIGURATION": "Test",
                "PORTAL_DATA_DIR": str(self.data_dir),
                "PORTAL_LOG_LEVEL": "warning",
                "PORTAL_LOG_FORMAT": "json",
                "BENCH_ROOT": str(ROOT),
                "PYTHONPATH": str(ROOT),
            }
        )
        self.moto = None
        if args.storage == "s3":
            self.env.update(self._start_moto())
        self.database = ScratchDatabase(args.database_url, self.data_dir, prefix="cleanup")
        self.env["DATABASE_URL"] = self.database.url
        os.environ.update(self.env)
        from configurations import importer

        importer.install()
        import django

        django.setup()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        self.vendor = connection.vendor

    def _start_moto(self):
        import boto3
        from moto.server import ThreadedMotoServer

        from tests.conftest import free_port

        port = free_port()
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.moto.start()
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket="bench-cleanup")
        return {
            "PORTAL_STORAGE": "s3",
            "AWS_STORAGE_BUCKET_NAME": "bench-cleanup",
            "AWS_S3_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }

    def reset(self):
        from django.db import connection

        from portal.models import (
            IngestFile,
            JobRun,
            OutboxEvent,
            TusUpload,
            UploadPart,
            UploadSession,
        )

        models = (TusUpload, UploadPart, UploadSession, IngestFile, OutboxEvent, JobRun)
        with connection.cursor() as cursor:
            if self.vendor == "postgresql":
                tables = ", ".join(model._meta.db_table for model in models)
                cursor.execute(f"TRUNCATE {tables}")
            else:
                for model in models:
                    cursor.execute(f"DELETE FROM {model._meta.db_table}")
        for sub in ("temp", "final"):
            shutil.rmtree(self.data_dir / sub, ignore_errors=True)
        if self.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def seed(self, n):
        from django.utils import timezone

        from tests.seed import bulk_seed, seed_owner

        self.reset()
        owner = seed_owner("bench")
        started = time.monotonic()
        bulk_seed(owner, n=n, expires_at=timezone.now() - timedelta(hours=1))
        bulk_seed(owner, n=max(n // 10, 1), expires_at=timezone.now() + timedelta(days=1))
        # Flush the seed's dirty pages now: every variant then starts from the same clean
        # page cache instead of competing with the writeback of 440k fresh files.
        os.sync()
        return time.monotonic() - started

    def measure(self, variant, n):
        seed_s = self.seed(n)
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, variant],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            text=True,
        )
        out = proc.stdout.read()
        _, status, _ = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            sys.exit(f"{variant} failed with exit code {proc.returncode}:\n{out}")
        (line,) = [line for line in out.splitlines() if line.startswith("BENCH ")]
        result = json.loads(line[len("BENCH ") :])
        self.check_outcome(n)
        result.update({"variant": variant, "n": n, "wall_s": wall, "seed_s": seed_s})
        result["rss_mb"] = result.pop("hwm_kb") / 1024
        print(
            f"  {variant:<15} n={n:>7}  {wall:8.2f} s  {result['queries']:>8} queries  "
            f"{result['rss_mb']:6.1f} MB peak RSS  (seed {seed_s:.0f} s)",
            flush=True,
        )
        if "steps_s" in result:
            steps = ", ".join(f"{name} {took:.1f} s" for name, took in result["steps_s"].items())
            print(f"  {'':<15} steps: {steps}", flush=True)
        return result

    def best_of(self, variants, n, repeat):
        """Run ``variants`` alternately ``repeat`` times; per variant the fastest run
        (and the highest peak RSS seen)."""
        runs = {variant: [] for variant in variants}
        for _ in range(repeat):
            for variant in variants:
                runs[variant].append(self.measure(variant, n))
        best = []
        for results in runs.values():
            fastest = dict(min(results, key=lambda result: result["wall_s"]))
            fastest["rss_mb"] = max(result["rss_mb"] for result in results)
            best.append(fastest)
        return best

    def check_outcome(self, n):
        """Every variant must leave the same state: expired failed, live untouched."""
        from portal.models import IngestFile, UploadPart, UploadSession

        live = max(n // 10, 1)
        open_sessions = UploadSession.objects.filter(status__in=UploadSession.OPEN_STATUSES)
        assert open_sessions.count() == live, "live sessions must survive"
        assert UploadSession.objects.filter(status="failed").count() == n
        assert IngestFile.objects.filter(status="failed").count() == n
        assert UploadPart.objects.exclude(temp_key="").count() == 4 * live
        if self.args.storage == "local":
            files = sum(len(names) for _, _, names in os.walk(self.data_dir / "temp"))
            assert files == 4 * live, f"{files} temp files left, expected {4 * live}"

    def close(self):
        from django.db import connections

        connections.close_all()
        self.database.drop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        if self.moto is not None:
            self.moto.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="expired sessions (x 4 parts)")
    parser.add_argument("--small-n", type=int, help="second size for RSS flatness (default n/10)")
    parser.add_argument(
        "--per-row-n",
        type=int,
        help="sessions for the per-row loop (default: n, the identical seed; a smaller value "
        "is extrapolated linearly, which flatters the loop: it slows down as n grows)",
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server to run on, e.g. postgres://postgres@127.0.0.1:5432/test "
        "(a throwaway database is created beside it and dropped); default: a SQLite file",
    )
    parser.add_argument("--storage", choices=("local", "s3"), default="local")
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs of portal_cleanup and the floor (best kept)"
    )
    parser.add_argument("--save", action="store_true", help="write the figures to docs/benchmarks/")
    args = parser.parse_args()
    page = (
        "cleanup"
        + ("-postgresql" if args.database_url else "")
        + ("-s3" if args.storage == "s3" else "")
    )
    with recording("cleanup", save=args.save, page=page):
        measure(args)


def measure(args):
    small_n = args.small_n or max(args.n // 10, 1)
    per_row_n = args.per_row_n or args.n

    bench = Bench(args)
    print(f"== cleanup bench: {bench.vendor}, {args.storage} storage, N={args.n}", flush=True)
    try:
        if args.storage == "s3":
            result = bench.measure("portal_cleanup", args.n)
            per_request = result["objects_deleted"] / max(result["delete_requests"], 1)
            print(
                f"S3: {result['objects_deleted']} objects in {result['delete_requests']} "
                f"DeleteObjects requests = {per_request:.0f} objects per request "
                f"(target >= 900): {'OK' if per_request >= 900 else 'MISSED'}"
            )
            return
        # Alternate the two close contenders and keep each one's best run: on a shared
        # machine the noise between runs is larger than the difference being measured.
        ours, floor = bench.best_of(["portal_cleanup", "floor"], args.n, args.repeat)
        ours_small, floor_small = bench.best_of(["portal_cleanup", "floor"], small_n, args.repeat)
        per_row = bench.measure("per_row", per_row_n)
    finally:
        bench.close()
    report(bench.vendor, args.n, small_n, ours, floor, ours_small, floor_small, per_row)


def report(vendor, n, small_n, ours, floor, ours_small, floor_small, per_row):
    per_row_n = per_row["n"]
    scale = n / per_row_n
    per_row_wall = per_row["wall_s"] * scale
    vs_floor = ours["wall_s"] / floor["wall_s"]
    vs_floor_small = ours_small["wall_s"] / floor_small["wall_s"]
    vs_per_row = per_row_wall / ours["wall_s"]
    ours_at_per_row_n = ours_small if per_row_n == small_n else None
    print()
    print(f"| {vendor} | N | wall s | queries | peak RSS MB | ratio |")
    print("|---|---|---|---|---|---|")

    def row(name, result, ratio=""):
        print(
            f"| {name} | {result['n']} | {result['wall_s']:.1f} | {result['queries']} "
            f"| {result['rss_mb']:.0f} | {ratio} |"
        )

    row("portal_cleanup", ours, f"{vs_floor:.2f}x the floor")
    row("floor", floor)
    row("portal_cleanup", ours_small, f"{vs_floor_small:.2f}x the floor")
    row("floor", floor_small)
    if ours_at_per_row_n is not None:
        measured = per_row["wall_s"] / ours_at_per_row_n["wall_s"]
        row("per-row loop", per_row, f"portal_cleanup {measured:.1f}x faster (measured)")
    else:
        row("per-row loop", per_row)
    if scale != 1:
        print(
            f"| per-row loop | {n} | {per_row_wall:.1f} (extrapolated x{scale:.0f}) "
            f"| {int(per_row['queries'] * scale)} | | portal_cleanup {vs_per_row:.1f}x faster |"
        )
    else:
        print(f"| | | | | | portal_cleanup {vs_per_row:.1f}x faster |")
    print()
    checks = [
        ("<= 1.5x the floor", vs_floor <= 1.5),
        (">= 20x faster than the per-row loop", vs_per_row >= 20),
        ("peak RSS < 150 MB", ours["rss_mb"] < 150),
        (
            f"RSS flat from N={small_n} to N={n} (within 25%)",
            ours["rss_mb"] <= 1.25 * ours_small["rss_mb"],
        ),
    ]
    for label, ok in checks:
        print(f"  {'OK    ' if ok else 'MISSED'} {label}")
    floor_vs_per_row = per_row_wall / floor["wall_s"]
    print(
        f"  (for scale: the floor itself is {floor_vs_per_row:.1f}x faster than the per-row loop)"
    )


if __name__ == "__main__":
    main()
