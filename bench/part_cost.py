"""Benchmark: what one part upload costs the server besides its bytes.

    .venv/bin/python bench/part_cost.py [--parts 128] [--rounds 3] [--parallel 4] [--save]

Starts gunicorn with the project's ``gunicorn.conf.py`` (its worker class, worker and
thread counts), the Prod configuration, SQLite and local storage in a temp directory, and
uploads small files in parts of the smallest size the portal accepts (256 KiB), so that
what a part costs is the request and its statements, not its bytes: one connection
sending the parts in order, then ``--parallel`` connections (the file's hash is then
caught up by requests other than the part's own). The baseline, measured in the same
run, is a ``GET /health`` on the same connection: the cost of any request through
gunicorn and the middleware.

Prints, per mode, the server's CPU milliseconds per part (all gunicorn processes,
read from ``/proc``: steadier than wall time on a shared machine; the lowest of
``--rounds`` rounds) and its ratio to the probe's. Where a part's time goes:
docs/upload-performance.md.
"""

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.lib import report as saved  # noqa: E402  (after the path is set)
from bench.lib.peer_clients import Plan, PortalClient  # noqa: E402
from bench.lib.peer_servers import gunicorn_settings, start_portal  # noqa: E402

PART = 256 * 1024
PARTS_PER_FILE = 16
PROBES = 200


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", type=int, default=128, help="parts per round and mode")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=4, help="connections, second mode")
    parser.add_argument("--save", action="store_true", help="write docs/benchmarks/part-cost.md")
    args = parser.parse_args()
    if args.parts < PARTS_PER_FILE or args.rounds < 1 or args.parallel < 2:
        parser.error(f"--parts >= {PARTS_PER_FILE}, --rounds >= 1, --parallel >= 2")
    return args


def cpu_ms(server, work):
    """Server CPU milliseconds (all processes) that ``work()`` took."""
    before = sum(server.cpu().values())
    work()
    return (sum(server.cpu().values()) - before) * 1000


def upload_files(client, plan, files, parallel):
    for _ in range(files):
        client.upload(plan, parallel)


def probe(client, count):
    for _ in range(count):
        client.http.request("GET", "/health")


def measure(server, client, plan, args):
    files = args.parts // PARTS_PER_FILE
    parts = files * PARTS_PER_FILE
    results = {"probe": [], "sequential": [], f"{args.parallel} connections": []}
    for _ in range(args.rounds):
        results["probe"].append(cpu_ms(server, lambda: probe(client, PROBES)) / PROBES)
        for mode, parallel in (("sequential", 1), (f"{args.parallel} connections", args.parallel)):
            used = cpu_ms(server, lambda p=parallel: upload_files(client, plan, files, p))
            results[mode].append(used / parts)
    return {mode: min(values) for mode, values in results.items()}


def report(best, args):
    probe_ms = best.pop("probe")
    print(f"server CPU per request, lowest of {args.rounds} rounds (parts of {PART // 1024} KiB):")
    print(f"  GET /health (baseline)      {probe_ms:6.2f} ms")
    for mode, value in best.items():
        print(f"  part, {mode:21s} {value:6.2f} ms  ({value / probe_ms:.1f}x the probe)")


def main():
    args = parse_args()
    with saved.recording("part_cost", save=args.save, page="part-cost"):
        workdir = Path(tempfile.mkdtemp(prefix="portal-bench-parts-"))
        server = None
        try:
            data_dir = workdir / "data"
            data_dir.mkdir()
            source = workdir / "source.bin"
            source.write_bytes(os.urandom(PARTS_PER_FILE * PART))
            plan = Plan(source, PARTS_PER_FILE * PART, PART)
            server, token = start_portal(data_dir, [])
            client = PortalClient(server.port, token)
            upload_files(client, plan, 2, args.parallel)  # warm up every worker
            print(f"portal: gunicorn {gunicorn_settings([])} (worker class, workers, threads)")
            report(measure(server, client, plan, args), args)
        finally:
            if server is not None:
                server.stop()
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
