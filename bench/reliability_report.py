"""Run the crash, outage, race and concurrency trials with bigger counts; print the figures.

Runs ``tests/reliability/test_{crash,outage,race,concurrency}.py`` under pytest (each
test prints one ``[reliability]`` line) with ``PORTAL_CRASH_TRIALS`` and
``PORTAL_RACE_TRIALS`` raised, and prints those lines and a table: trials, kills that
landed, violations, duration. The baseline measured in the same run is the uninterrupted
run of the same work: each crash line shows a killed run plus the rerun that completed it
against a clean run (``ratio``), the price of a crash.

Usage: ``python bench/reliability_report.py [--crash-trials 200] [--race-trials 5000]
[--database-url postgres://...] [--storage s3]``. The concurrency and database-outage
tests need PostgreSQL (``--database-url``); on SQLite they are skipped.
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.lib.report import recording  # noqa: E402  (after the path is set)

TESTS = [
    "tests/reliability/test_crash.py",
    "tests/reliability/test_outage.py",
    "tests/reliability/test_race.py",
    "tests/reliability/test_concurrency.py",
]
LINE = re.compile(r"^\[reliability\] (?P<name>.+?) \[(?P<backend>[^\]]+)\]: (?P<figures>.*)$")
FIGURE = re.compile(r"(\w+)=((?:\([^)]*\)|\[[^\]]*\]|\{[^}]*\}|[^,])+)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crash-trials", type=int, default=200)
    parser.add_argument("--race-trials", type=int, default=5000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--storage", choices=("local", "s3"), default="local")
    parser.add_argument(
        "--save",
        action="store_true",
        help="write the figures to docs/benchmarks/",
    )
    args = parser.parse_args(argv)

    env = {
        **os.environ,
        "PORTAL_CRASH_TRIALS": str(args.crash_trials),
        "PORTAL_RACE_TRIALS": str(args.race_trials),
        "PORTAL_TEST_STORAGE": args.storage,
    }
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *TESTS, "-q", "-s", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    rows = [match for line in proc.stdout.splitlines() if (match := LINE.match(line.strip()))]
    for row in rows:
        print(row.group(0))
    print()
    print("| test | backend | trials | kills landed | violations | duration | ratio |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        figures = dict(FIGURE.findall(row["figures"]))
        ratio = re.search(r"ratio ([\d.]+)", figures.get("killed_plus_rerun_ms", ""))
        print(
            f"| {row['name']} | {row['backend']} | {figures.get('trials', '-')} "
            f"| {figures.get('kills_landed', '-')} | {figures.get('violations', '-')} "
            f"| {figures.get('duration', '-')} | {ratio.group(1) + 'x' if ratio else '-'} |"
        )
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    print(f"\npytest: {summary} (exit {proc.returncode}, {seconds:.0f} s)")
    if proc.returncode != 0:
        print(proc.stdout[-5000:], proc.stderr[-3000:], sep="\n", file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    with recording("reliability_report", save="--save" in sys.argv):
        code = main()
    sys.exit(code)
