"""Benchmark: the portal's upload path side by side with the official tus server.

    .venv/bin/python bench/peer.py [--size-mib 512] [--rounds 3] [--parallel 4]
        [--servers portal,peer] [--portal-setting PORTAL_NAME=VALUE]

What a user would pick instead of this portal for resumable uploads is a tus server, so
this runs both on this machine, in one run, with one client:

- the portal: gunicorn with the project's ``gunicorn.conf.py`` (its worker class, worker
  and thread counts), the Prod configuration, SQLite and local storage in a temp
  directory on disk;
- the peer: ``@tus/server`` 2.4.5 with ``@tus/file-store`` 2.1.1 as one Node process,
  its file store on the same disk, installed with ``npm`` into a temp directory (without
  ``node``/``npm`` the script says so and exits 0).

The client is the standard library's ``http.client`` (1 MiB send blocks), streaming each
8 MiB chunk from one file of random bytes (on tmpfs, ``/dev/shm``, by default): the portal
gets ``PUT .../parts/{n}``, the peer ``PATCH`` with ``Upload-Offset``. Two small untimed
uploads warm both servers up first. Sequential is one connection sending the chunks in
order; with ``--parallel`` connections the portal's parts go to whichever connection is
free, and the peer (whose file store has no concatenation extension) gets one upload per
connection, each a contiguous quarter of the file. Rounds are interleaved (peer and
portal alternate who goes first). Before every timed run the bench writes and deletes a
scratch file of 1.5x the upload beside the servers' storage, so that both servers write
into memory that is quick to write on this kind of host (``bench/lib/memory.py``;
``--no-prime`` turns it off), then runs ``sync``. Medians are printed with the load
average.

Figures: MB/s for upload only and, for the portal, upload + finalize; the ratios to the
peer; server CPU seconds read from ``/proc`` (all gunicorn processes summed, and the
largest one); peak RSS (``VmHWM``) of every server process; and finalize alone against
``cp`` + ``sha256sum`` (and ``cp`` + ``openssl sha256``, which uses the CPU's SHA
instructions) of the same final file in the same run. Targets: upload >= 1.0x the peer
(both modes), upload + finalize >= 0.8x the peer's upload, server CPU per byte <= 1.5x the
peer's, peak RSS < 150 MB per process.
"""

import argparse
import hashlib
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.lib import report as saved  # noqa: E402
from bench.lib.memory import prime_memory  # noqa: E402
from bench.lib.peer_clients import Plan, PortalClient, TusClient, warm_up  # noqa: E402
from bench.lib.peer_servers import (  # noqa: E402
    cpu_used,
    gunicorn_settings,
    install_peer,
    installed_versions,
    portal_settings,
    start_peer,
    start_portal,
)
from bench.lib.uploads import make_file  # noqa: E402

MIB = 1024 * 1024
TARGET_UPLOAD = 1.0
TARGET_WITH_FINALIZE = 0.8
TARGET_CPU = 1.5
TARGET_RSS_MB = 150


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--chunk-mib", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=4, help="connections, second mode")
    parser.add_argument("--source-dir", default="/dev/shm", help="where the source file goes")
    parser.add_argument("--data-dir", default=None, help="servers' storage (default: /tmp)")
    parser.add_argument(
        "--servers", default="portal,peer", help="comma-separated subset of portal,peer"
    )
    parser.add_argument(
        "--gunicorn-arg",
        action="append",
        default=[],
        help="extra gunicorn argument (repeatable), e.g. --gunicorn-arg=--threads=8",
    )
    parser.add_argument(
        "--portal-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a PORTAL_* setting for the portal (repeatable), e.g. "
        "--portal-setting=PORTAL_S3_COPY_ASSEMBLY=false",
    )
    parser.add_argument(
        "--no-prime",
        action="store_true",
        help="do not free a scratch file's pages before each timed run (see prime_memory)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp directories")
    parser.add_argument("--save", action="store_true", help="write docs/benchmarks/peer.md")
    return parser.parse_args()


# ---------------------------------------------------------------------------- the runs


def clear_dir(path):
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)


def final_path(data_dir, file_id):
    with sqlite3.connect(data_dir / "bench.sqlite3") as db:
        (key,) = db.execute(
            "SELECT storage_key FROM portal_ingestfile WHERE id = ?", [file_id.replace("-", "")]
        ).fetchone()
    return data_dir / "final" / key


def timed_shell(script, *args):
    started = time.perf_counter()
    subprocess.run(["sh", "-c", script, "sh", *map(str, args)], check=True, capture_output=True)
    return time.perf_counter() - started


def run_portal(server, token, plan, parallel, data_dir, expected_sha, prime_dir):
    client = PortalClient(server.port, token)
    prime_memory(prime_dir, plan.size)
    os.sync()
    cpu0 = server.cpu()
    client0 = time.process_time()
    started = time.perf_counter()
    sid = client.upload(plan, parallel)
    uploaded = time.perf_counter()
    client_cpu = time.process_time() - client0
    cpu1 = server.cpu()
    file = client.finalize(sid)
    finished = time.perf_counter()
    cpu2 = server.cpu()
    if file["sha256"] != expected_sha:
        sys.exit(f"portal sha256 {file['sha256']} != {expected_sha}")
    final = final_path(data_dir, file["id"])
    os.sync()
    copy = data_dir / "cp-copy.bin"
    cp_s = timed_shell('cp "$1" "$2"', final, copy)
    copy.unlink()
    os.sync()
    sha256sum_s = timed_shell('sha256sum "$1" >/dev/null', final)
    openssl_s = timed_shell('openssl dgst -sha256 "$1" >/dev/null', final)
    clear_dir(data_dir / "temp")
    clear_dir(data_dir / "final")
    return {
        "upload_s": uploaded - started,
        "total_s": finished - started,
        "finalize_s": finished - uploaded,
        "cpu_upload": cpu_used(cpu0, cpu1),
        "cpu_finalize": cpu_used(cpu1, cpu2),
        "cpu_client": client_cpu,
        "cp_s": cp_s,
        "sha256sum_s": sha256sum_s,
        "openssl_s": openssl_s,
    }


def run_peer(server, plan, parallel, store, expected_sha, verify, prime_dir):
    client = TusClient(server.port)
    prime_memory(prime_dir, plan.size)
    os.sync()
    cpu0 = server.cpu()
    client0 = time.process_time()
    started = time.perf_counter()
    uploads = client.upload(plan, parallel)
    finished = time.perf_counter()
    client_cpu = time.process_time() - client0
    cpu1 = server.cpu()
    if verify:
        digest = hashlib.sha256()
        for upload_id, _numbers in uploads:
            with open(store / upload_id, "rb") as handle:
                while block := handle.read(MIB):
                    digest.update(block)
        if digest.hexdigest() != expected_sha:
            sys.exit("the tus server's files do not hold the uploaded bytes")
    clear_dir(store)
    return {
        "upload_s": finished - started,
        "cpu_upload": cpu_used(cpu0, cpu1),
        "cpu_client": client_cpu,
    }


# ---------------------------------------------------------------------------- the report


def median(runs, key, index=None):
    values = [run[key] if index is None else run[key][index] for run in runs]
    return statistics.median(values)


def spread(runs, key):
    values = [run[key] for run in runs]
    return f"{min(values):.2f}-{max(values):.2f}"


def verdict(ok):
    return "ok" if ok else "MISSED"


def report(results, modes, plan, servers, loads, meta):
    mb = plan.size / 1e6
    print()
    print(meta)
    print(f"load average (1/5/15 min) per round: {'; '.join(loads)}")
    print()
    rows = []
    header = f"{'':34} {'portal':>12} {'peer (tus)':>12} {'ratio':>8}  target"
    print(header)
    print("-" * len(header))
    for mode, label in modes:
        portal = results.get(("portal", mode), [])
        peer = results.get(("peer", mode), [])
        peer_rate = mb / median(peer, "upload_s") if peer else None
        for what, key, target in (
            ("upload only", "upload_s", TARGET_UPLOAD),
            ("upload + finalize", "total_s", TARGET_WITH_FINALIZE),
        ):
            rate = mb / median(portal, key) if portal else None
            ratio = rate / peer_rate if rate and peer_rate else None
            peer_cell = f"{peer_rate:8.1f} MB/s" if peer_rate and key == "upload_s" else ""
            if key == "total_s" and peer_rate:
                peer_cell = "(no finalize)"
            row = (
                f"{label + ', ' + what:34} "
                f"{(f'{rate:8.1f} MB/s' if rate else '-'):>12} {peer_cell:>12} "
                f"{(f'{ratio:.2f}x' if ratio else '-'):>8}"
            )
            if ratio:
                rows.append(ratio >= target)
                row += f"  >= {target}x of the peer's upload: {verdict(ratio >= target)}"
            print(row)
    print()
    print("server CPU seconds for the whole file, upload only (medians; portal: all processes")
    print("summed / the largest process; finalize separately):")
    for mode, label in modes:
        portal = results.get(("portal", mode), [])
        peer = results.get(("peer", mode), [])
        line = f"  {label:16}"
        if portal:
            line += (
                f" portal {median(portal, 'cpu_upload', 0):.2f} s"
                f" / {median(portal, 'cpu_upload', 1):.2f} s,"
                f" finalize {median(portal, 'cpu_finalize', 0):.2f} s;"
            )
        if peer:
            line += f" peer {median(peer, 'cpu_upload', 0):.2f} s"
        if portal and peer:
            ratio = median(portal, "cpu_upload", 0) / median(peer, "cpu_upload", 0)
            rows.append(ratio <= TARGET_CPU)
            line += f"; {ratio:.2f}x (target <= {TARGET_CPU}x: {verdict(ratio <= TARGET_CPU)})"
        print(line)
    print()
    print("peak RSS (VmHWM) per server process:")
    for name, server in servers.items():
        peaks = server.peak_rss()
        largest = max(peaks.values(), default=0.0)
        rows.append(largest < TARGET_RSS_MB)
        listed = ", ".join(f"{mb_:.1f}" for mb_ in peaks.values())
        print(
            f"  {name:7} largest {largest:6.1f} MB, summed {sum(peaks.values()):6.1f} MB "
            f"({len(peaks)} processes: {listed}); target < {TARGET_RSS_MB} MB: "
            f"{verdict(largest < TARGET_RSS_MB)}"
        )
    portal_runs = [run for (name, _), runs in results.items() if name == "portal" for run in runs]
    if portal_runs:
        print()
        finalize_s = median(portal_runs, "finalize_s")
        cp_s, sum_s = median(portal_runs, "cp_s"), median(portal_runs, "sha256sum_s")
        ssl_s = median(portal_runs, "openssl_s")
        print(f"finalize alone, the same final file (medians of {len(portal_runs)} runs):")
        print(
            f"  finalize {finalize_s:.2f} s ({mb / finalize_s:.0f} MB/s; "
            f"runs {spread(portal_runs, 'finalize_s')} s)"
        )
        print(
            f"  cp {cp_s:.2f} s + sha256sum {sum_s:.2f} s = {cp_s + sum_s:.2f} s: "
            f"finalize takes {finalize_s / (cp_s + sum_s):.2f}x that time"
        )
        print(
            f"  cp {cp_s:.2f} s + openssl sha256 {ssl_s:.2f} s = {cp_s + ssl_s:.2f} s: "
            f"finalize takes {finalize_s / (cp_s + ssl_s):.2f}x that time"
        )
    print()
    print(f"targets: {sum(rows)} of {len(rows)} met")


def main():
    args = parse_args()
    with saved.recording("peer", save=args.save):
        compare(args)


def compare(args):
    wanted = {name.strip() for name in args.servers.split(",") if name.strip()}
    portal_env = portal_settings(args.portal_setting)
    tmp = Path(tempfile.mkdtemp(prefix="portal-bench-peer-", dir=args.data_dir))
    peer_dir = tmp / "tus"
    peer_dir.mkdir()
    if "peer" in wanted and not install_peer(peer_dir):
        print("bench/peer.py: node and npm are needed to run the tus server; skipped.")
        shutil.rmtree(tmp, ignore_errors=True)
        return
    source_dir = Path(args.source_dir if os.path.isdir(args.source_dir) else tmp)
    source = Path(tempfile.mkstemp(prefix="portal-bench-peer-", dir=source_dir)[1])
    size = args.size_mib * MIB
    expected_sha = make_file(source, size)
    plan = Plan(source, size, args.chunk_mib * MIB)
    modes = [(1, "sequential")]
    if args.parallel > 1:
        modes.append((args.parallel, f"{args.parallel} connections"))
    data_dir = tmp / "portal"
    data_dir.mkdir()
    servers, results, loads, token = {}, {}, [], None
    prime = None if args.no_prime else tmp
    try:
        if "portal" in wanted:
            servers["portal"], token = start_portal(data_dir, args.gunicorn_arg, portal_env)
        if "peer" in wanted:
            servers["peer"] = start_peer(peer_dir, peer_dir / "store")
        cleared = [data_dir / "temp", data_dir / "final", peer_dir / "store"]
        warm_up(servers, token, plan, args.parallel)
        for directory in cleared:
            clear_dir(directory)
        for round_number in range(args.rounds):
            order = sorted(servers, reverse=bool(round_number % 2))
            for parallel, label in modes:
                for name in order:
                    if name == "portal":
                        run = run_portal(
                            servers[name], token, plan, parallel, data_dir, expected_sha, prime
                        )
                    else:
                        run = run_peer(
                            servers[name],
                            plan,
                            parallel,
                            peer_dir / "store",
                            expected_sha,
                            verify=round_number == 0,
                            prime_dir=prime,
                        )
                    results.setdefault((name, parallel), []).append(run)
                    print(
                        f"round {round_number + 1} {label:14} {name:6} "
                        f"upload {size / 1e6 / run['upload_s']:7.1f} MB/s"
                        + (
                            f", with finalize {size / 1e6 / run['total_s']:7.1f} MB/s"
                            if "total_s" in run
                            else ""
                        )
                        + f", server CPU {run['cpu_upload'][0]:.2f} s"
                        + f", client CPU {run['cpu_client']:.2f} s",
                        flush=True,
                    )
            loads.append(" ".join(f"{x:.2f}" for x in os.getloadavg()))
        meta = (
            f"file: {args.size_mib} MiB of random bytes in {source_dir}, "
            f"{plan.chunks} chunks of {args.chunk_mib} MiB, {args.rounds} rounds; "
            f"storage in {tmp}; {os.cpu_count()} CPUs; "
            + ("no memory priming" if args.no_prime else "memory primed before every run")
        )
        if "portal" in servers:
            settings = gunicorn_settings(args.gunicorn_arg)
            meta += f"\nportal: gunicorn {settings} (worker class, workers, threads)"
            meta += "".join(f"; {name}={value}" for name, value in portal_env.items())
        if "peer" in servers:
            node, versions = installed_versions(peer_dir)
            meta += f"\npeer: node {node}, " + ", ".join(f"{k} {v}" for k, v in versions.items())
        report(results, modes, plan, servers, loads, meta)
    finally:
        for server in servers.values():
            server.stop()
        source.unlink(missing_ok=True)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
