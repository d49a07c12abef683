"""Benchmark: tus against tus, the portal's tus endpoint beside the official tus server.

    .venv/bin/python bench/tus_peer.py [--size-mib 256] [--rounds 3] [--parallel 4] [--save]

The same tus client (``bench/lib/peer_clients.TusClient``: POST, then one PATCH per
``--chunk-mib`` at the offset, over keep-alive ``http.client`` connections) uploads one
file of random bytes to both servers, set up as ``bench/peer.py`` sets them up: the
portal's gunicorn with ``gunicorn.conf.py`` (Prod, SQLite, local storage in a temp
directory) at ``/api/v1/tus/``, and ``@tus/server`` with ``@tus/file-store`` on the same
disk. One upload on one connection, then ``--parallel`` uploads at once (a contiguous
part of the file each). The portal's last PATCH also assembles the file and takes its
sha256 (what a tus client waits for before it reports success), so its time includes
that; the peer stores the PATCHes' bytes and nothing more. The first round checks every
upload's sha256 on both sides.

Targets (issue 28): upload >= 1.0x the peer's MB/s, server CPU per byte <= 1.2x the
peer's, peak RSS of every server process < 150 MB.
"""

import argparse
import hashlib
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.lib import report as saved  # noqa: E402
from bench.lib.memory import prime_memory  # noqa: E402
from bench.lib.peer_clients import Plan, TusClient  # noqa: E402
from bench.lib.peer_servers import (  # noqa: E402
    cpu_used,
    gunicorn_settings,
    install_peer,
    installed_versions,
    start_peer,
    start_portal,
)
from bench.lib.uploads import make_file  # noqa: E402

MIB = 1024 * 1024
TARGET_UPLOAD = 1.0
TARGET_CPU = 1.2
TARGET_RSS_MB = 150
PORTAL_TUS = "/api/v1/tus/"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--chunk-mib", type=int, default=8, help="bytes per PATCH")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=4, help="uploads at once, second mode")
    parser.add_argument("--source-dir", default="/dev/shm", help="where the source file goes")
    parser.add_argument("--data-dir", default=None, help="servers' storage (default: /tmp)")
    parser.add_argument("--no-prime", action="store_true", help="see bench/peer.py")
    parser.add_argument("--save", action="store_true", help="write docs/benchmarks/tus_peer.md")
    return parser.parse_args()


def clear_dir(path):
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)


def group_sha256(plan, numbers):
    digest = hashlib.sha256()
    for number in numbers:
        body = plan.body(number)
        while block := body.read(MIB):
            digest.update(block)
    return digest.hexdigest()


def portal_sha256(data_dir, upload_id):
    with sqlite3.connect(data_dir / "bench.sqlite3") as db:
        row = db.execute(
            "SELECT f.sha256 FROM portal_uploadsession s JOIN portal_ingestfile f"
            " ON f.id = s.file_id WHERE s.id = ? AND f.status = 'stored'",
            [upload_id.replace("-", "")],
        ).fetchone()
    return row[0] if row else None


def peer_sha256(store, upload_id):
    digest = hashlib.sha256()
    with open(store / upload_id, "rb") as handle:
        while block := handle.read(MIB):
            digest.update(block)
    return digest.hexdigest()


def timed_run(server, client, plan, parallel, prime_dir):
    prime_memory(prime_dir, plan.size)
    os.sync()
    cpu0 = server.cpu()
    started = time.perf_counter()
    uploads = client.upload(plan, parallel)
    elapsed = time.perf_counter() - started
    return uploads, {"upload_s": elapsed, "cpu": cpu_used(cpu0, server.cpu())}


def verify(name, uploads, plan, stored_sha256):
    for upload_id, numbers in uploads:
        if stored_sha256(upload_id) != group_sha256(plan, numbers):
            sys.exit(f"{name}: upload {upload_id} does not hold the bytes sent")


def median(values):
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def verdict(ok):
    return "ok" if ok else "MISSED"


def report(results, modes, plan, servers, meta):
    mb = plan.size / 1e6
    met = []
    print()
    print(meta)
    print()
    print(f"{'':28} {'portal (tus)':>14} {'peer (tus)':>14} {'ratio':>7}  target")
    for parallel, label in modes:
        portal, peer = results[("portal", parallel)], results[("peer", parallel)]
        rates = [mb / median([run["upload_s"] for run in runs]) for runs in (portal, peer)]
        ratio = rates[0] / rates[1]
        met.append(ratio >= TARGET_UPLOAD)
        print(
            f"{label + ', upload':28} {rates[0]:9.1f} MB/s {rates[1]:9.1f} MB/s {ratio:6.2f}x"
            f"  >= {TARGET_UPLOAD}x: {verdict(ratio >= TARGET_UPLOAD)}"
        )
        cpus = [median([run["cpu"][0] for run in runs]) for runs in (portal, peer)]
        ratio = cpus[0] / cpus[1]
        met.append(ratio <= TARGET_CPU)
        print(
            f"{label + ', server CPU':28} {cpus[0]:11.2f} s {cpus[1]:11.2f} s {ratio:6.2f}x"
            f"  <= {TARGET_CPU}x: {verdict(ratio <= TARGET_CPU)}"
        )
    print()
    print("peak RSS (VmHWM) per server process:")
    for name, server in servers.items():
        peaks = server.peak_rss()
        largest = max(peaks.values(), default=0.0)
        met.append(largest < TARGET_RSS_MB)
        print(
            f"  {name:7} largest {largest:6.1f} MB ({len(peaks)} processes); "
            f"< {TARGET_RSS_MB} MB: {verdict(largest < TARGET_RSS_MB)}"
        )
    print()
    print(f"targets: {sum(met)} of {len(met)} met")


def main():
    args = parse_args()
    with saved.recording("tus_peer", save=args.save):
        compare(args)


def compare(args):
    tmp = Path(tempfile.mkdtemp(prefix="portal-bench-tus-", dir=args.data_dir))
    peer_dir = tmp / "tus"
    peer_dir.mkdir()
    if not install_peer(peer_dir):
        print("bench/tus_peer.py: node and npm are needed to run the tus server; skipped.")
        shutil.rmtree(tmp, ignore_errors=True)
        return
    source_dir = Path(args.source_dir if os.path.isdir(args.source_dir) else tmp)
    source = Path(tempfile.mkstemp(prefix="portal-bench-tus-", dir=source_dir)[1])
    make_file(source, args.size_mib * MIB)
    plan = Plan(source, args.size_mib * MIB, args.chunk_mib * MIB)
    modes = [(1, "one upload"), (args.parallel, f"{args.parallel} uploads at once")]
    data_dir = tmp / "portal"
    data_dir.mkdir()
    store = peer_dir / "store"
    servers, results = {}, {}
    prime = None if args.no_prime else tmp
    try:
        servers["portal"], token = start_portal(data_dir, [])
        servers["peer"] = start_peer(peer_dir, store)
        clients = {
            "portal": TusClient(servers["portal"].port, PORTAL_TUS, token),
            "peer": TusClient(servers["peer"].port),
        }
        checks = {
            "portal": lambda upload_id: portal_sha256(data_dir, upload_id),
            "peer": lambda upload_id: peer_sha256(store, upload_id),
        }
        small = Plan(source, min(plan.size, 2 * args.parallel * plan.chunk), plan.chunk)
        for client in clients.values():  # warm-up, untimed
            client.upload(small, args.parallel)
        for round_number in range(args.rounds):
            for parallel, label in modes:
                for name in sorted(clients, reverse=bool(round_number % 2)):
                    server = servers[name]
                    uploads, run = timed_run(server, clients[name], plan, parallel, prime)
                    if round_number == 0:
                        verify(name, uploads, plan, checks[name])
                    results.setdefault((name, parallel), []).append(run)
                    print(
                        f"round {round_number + 1} {label:18} {name:6} "
                        f"{plan.size / 1e6 / run['upload_s']:7.1f} MB/s, "
                        f"server CPU {run['cpu'][0]:.2f} s",
                        flush=True,
                    )
                    for directory in (data_dir / "temp", data_dir / "final", store):
                        clear_dir(directory)
        node, versions = installed_versions(peer_dir)
        meta = (
            f"file: {args.size_mib} MiB of random bytes, PATCHes of {args.chunk_mib} MiB, "
            f"{args.rounds} rounds; storage in {tmp}; {os.cpu_count()} CPUs; load average "
            + " ".join(f"{x:.2f}" for x in os.getloadavg())
            + f"\nportal: gunicorn {gunicorn_settings([])}; peer: node {node}, "
            + ", ".join(f"{k} {v}" for k, v in versions.items())
        )
        report(results, modes, plan, servers, meta)
    finally:
        for server in servers.values():
            server.stop()
        source.unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
