"""Benchmark: ``/health`` and ``/ready`` against a bare Django view, on gunicorn (2 workers).

    .venv/bin/python bench/probes.py [--requests 3000] [--concurrency 4] [--no-s3]

Starts gunicorn with the project's ``gunicorn.conf.py`` (gthread, 2 workers, 4 threads)
on loopback, a temp SQLite database and local storage, serving
``bench/servers/probe_wsgi.py``: the portal plus a bare view (``/bench/bare``, 200 through
the whole middleware stack) and a counter of storage requests. Clients are separate
processes, one keep-alive ``http.client`` connection each, sending a fixed number of
requests per phase; the bare view, ``/health`` and ``/ready`` take turns for ``--rounds``
rounds and the best round of each counts. In the same run:

- bare view, ``/health``, ``/ready`` (``PORTAL_READY_CACHE_SECONDS`` = 2, the default):
  requests/s, p50 and p99 latency, and the workers' CPU per request (read from
  ``/proc``: steadier than throughput on a shared machine); targets ``/health`` >= 0.9x
  the bare view's throughput and ``/ready`` p99 < 30 ms;
- ``/ready`` with the cache off (a second server): the same figures;
- storage requests per second caused by the probes, with and without the cache, over
  ``--cost-seconds`` of probing at full speed: calls of the local backend, and (unless
  ``--no-s3``) HTTP requests to S3 with a moto server as the bucket. With the cache the
  rate is bounded by workers x (requests per check run) / cache seconds, whatever the
  probe rate; a short phase overstates it by the first miss of each worker.
"""

import argparse
import http.client
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.lib import procfs  # noqa: E402  (after the path is set)
from bench.lib.report import recording  # noqa: E402

GUNICORN = str(Path(sys.executable).parent / "gunicorn")
MOTO = str(Path(sys.executable).parent / "moto_server")
HEALTH_TARGET = 0.9
READY_P99_TARGET_MS = 30.0


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="per phase and round")
    parser.add_argument("--concurrency", type=int, default=4, help="client connections")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per path (best counts)")
    parser.add_argument("--no-s3", action="store_true", help="skip the S3 (moto) phase")
    parser.add_argument(
        "--cost-seconds", type=float, default=6.0, help="length of each storage-cost phase"
    )
    parser.add_argument("--save", action="store_true", help="write the figures to docs/benchmarks/")
    return parser.parse_args()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port, path, deadline=30.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing answers on port {port}{path}")


class Server:
    """gunicorn serving ``bench.servers.probe_wsgi`` with its own storage counter file."""

    def __init__(self, workdir, name, **env):
        self.port = free_port()
        self.counter = workdir / f"{name}.count"
        self.counter.touch()
        data = workdir / name
        for root in ("temp", "final"):  # the portal never creates its storage roots
            (data / root).mkdir(parents=True)
        environment = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PORTAL_", "AWS_", "DATABASE_", "DJANGO_", "GUNICORN_"))
        }
        environment.update(
            {
                "DJANGO_SETTINGS_MODULE": "boot.settings",
                "DJANGO_CONFIGURATION": "Test",
                "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
                "PORTAL_DATA_DIR": str(data),
                "PORTAL_STORAGE": "local",
                "PORTAL_LOG_LEVEL": "warning",
                "PYTHONPATH": str(ROOT),
                "HOST": "127.0.0.1",
                "PORT": str(self.port),
                "WEB_CONCURRENCY": "2",
                "GUNICORN_THREADS": "4",
                "BENCH_STORAGE_COUNTER": str(self.counter),
                **env,
            }
        )
        self.log = open(workdir / f"{name}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                GUNICORN,
                *("-c", str(ROOT / "gunicorn.conf.py")),
                *("--max-requests", "0"),  # no worker recycling in the middle of a phase
                "bench.servers.probe_wsgi:application",
            ],
            cwd=ROOT,
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self.port, "/health")

    def storage_requests(self):
        return self.counter.stat().st_size

    def cpu_seconds(self):
        """User + system CPU of the workers so far: cost per request, whatever the load."""
        return sum(procfs.cpu_seconds(child) for child in procfs.children(self.proc.pid))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def _client(args):
    port, path, count, seconds = args
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies = []
    deadline = time.perf_counter() + seconds
    while len(latencies) < count and time.perf_counter() < deadline:
        started = time.perf_counter()
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 200:
            # Not SystemExit: in a pool worker that kills the worker and the map waits
            # forever; an exception reaches the parent and ends the run.
            raise RuntimeError(f"{path} answered {response.status}")
    conn.close()
    return latencies


def phase(pool, server, path, total, concurrency, seconds=float("inf")):
    """One round: ``total`` requests (or ``seconds``) over ``concurrency`` connections."""
    per_client = total // concurrency
    before = server.storage_requests()
    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    parts = pool.map(_client, [(server.port, path, per_client, seconds)] * concurrency)
    elapsed = time.perf_counter() - started
    latencies = sorted(x for part in parts for x in part)
    cpu = server.cpu_seconds() - cpu_before
    return {
        "cpu_us": cpu / len(latencies) * 1e6,
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "storage_per_s": (server.storage_requests() - before) / elapsed,
        "storage_per_probe": (server.storage_requests() - before) / len(latencies),
    }


def best_of(rounds, pool, server, path, total, concurrency):
    results = [phase(pool, server, path, total, concurrency) for _ in range(rounds)]
    return max(results, key=lambda r: r["rps"])


def interleaved(rounds, pool, server, paths, total, concurrency):
    """Best round of each path, the paths taking turns so a noisy neighbour hits all alike."""
    results = {path: [] for path in paths}
    for _ in range(rounds):
        for path in paths:
            results[path].append(phase(pool, server, path, total, concurrency))
    return [max(results[path], key=lambda r: r["rps"]) for path in paths]


def row(label, r, ratio=None):
    extra = f"  {ratio:.2f}x bare" if ratio is not None else ""
    extra = f"  cpu {r['cpu_us']:5.0f} us/req{extra}"
    storage = ""
    if r["storage_per_s"]:
        storage = f"  storage {r['storage_per_s']:8.1f} req/s ({r['storage_per_probe']:.2f}/probe)"
    print(
        f"{label:<28} {r['rps']:8.0f} req/s  p50 {r['p50']:6.2f} ms  p99 {r['p99']:6.2f} ms"
        f"{extra}{storage}"
    )


def s3_phase(workdir, pool, concurrency, seconds):
    """The same probes with S3 (a moto server) as both storages: HTTP requests to S3."""
    port = free_port()
    moto = subprocess.Popen(
        [MOTO, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(port, "/moto-api/")
        import boto3

        endpoint = f"http://127.0.0.1:{port}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        ).create_bucket(Bucket="bench")
        s3_env = {
            "PORTAL_STORAGE": "s3",
            "AWS_STORAGE_BUCKET_NAME": "bench",
            "AWS_S3_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
        }
        results = {}
        for cache in ("2", "0"):
            server = Server(workdir, f"s3-cache{cache}", PORTAL_READY_CACHE_SECONDS=cache, **s3_env)
            try:
                phase(pool, server, "/ready", concurrency * 10, concurrency)  # warm-up
                results[cache] = phase(pool, server, "/ready", 10**9, concurrency, seconds)
            finally:
                server.stop()
        return results
    finally:
        moto.terminate()
        moto.wait(timeout=30)


def main():
    args = parse_args()
    total, concurrency = args.requests, args.concurrency
    print(
        f"gunicorn gthread 2 workers x 4 threads, {concurrency} keep-alive clients, "
        f"{total} requests per phase, best of {args.rounds} interleaved rounds"
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-probes-") as tmp,
        multiprocessing.Pool(concurrency) as pool,
    ):
        workdir = Path(tmp)
        cached = Server(workdir, "cache2", PORTAL_READY_CACHE_SECONDS="2")
        try:
            for path in ("/bench/bare", "/health", "/ready"):
                phase(pool, cached, path, concurrency * 50, concurrency)  # warm-up
            bare, health, ready = interleaved(
                args.rounds, pool, cached, ("/bench/bare", "/health", "/ready"), total, concurrency
            )
            cost = phase(pool, cached, "/ready", 10**9, concurrency, seconds=args.cost_seconds)
        finally:
            cached.stop()
        uncached_server = Server(workdir, "cache0", PORTAL_READY_CACHE_SECONDS="0")
        try:
            phase(pool, uncached_server, "/ready", concurrency * 50, concurrency)
            uncached = best_of(2, pool, uncached_server, "/ready", total // 2, concurrency)
        finally:
            uncached_server.stop()
        s3 = None if args.no_s3 else s3_phase(workdir, pool, concurrency, args.cost_seconds)

    print()
    row("bare Django view", bare)
    row("/health", health, health["rps"] / bare["rps"])
    row("/ready (cache 2 s)", ready, ready["rps"] / bare["rps"])
    row("/ready (cache off)", uncached, uncached["rps"] / bare["rps"])
    row(f"/ready cache 2 s, {args.cost_seconds:g} s", cost, cost["rps"] / bare["rps"])
    if s3:
        row("/ready S3 (cache 2 s)", s3["2"])
        row("/ready S3 (cache off)", s3["0"])
    print()
    ratio = health["rps"] / bare["rps"]
    verdict = "met" if ratio >= HEALTH_TARGET else "MISSED"
    print(f"/health throughput {ratio:.2f}x the bare view (target >= {HEALTH_TARGET}x): {verdict}")
    print(
        f"/health server CPU {health['cpu_us']:.0f} us/request, "
        f"{health['cpu_us'] / bare['cpu_us']:.2f}x the bare view's {bare['cpu_us']:.0f} us"
    )
    verdict = "met" if ready["p99"] < READY_P99_TARGET_MS else "MISSED"
    print(
        f"/ready p99 {ready['p99']:.2f} ms cached (target < {READY_P99_TARGET_MS:g} ms): {verdict}"
    )
    print(f"/ready p99 {uncached['p99']:.2f} ms with the cache off (no target: not the default)")
    if uncached["storage_per_s"]:
        print(
            f"storage requests caused by probes (local): {uncached['storage_per_s']:.0f}/s "
            f"without the cache, {cost['storage_per_s']:.1f}/s with it"
            + (
                f" ({uncached['storage_per_s'] / cost['storage_per_s']:.0f}x fewer)"
                if cost["storage_per_s"]
                else ""
            )
        )
    if s3:
        print(
            f"S3 requests caused by probes: {s3['0']['storage_per_s']:.0f}/s without the cache "
            f"({s3['0']['storage_per_probe']:.1f} per probe), {s3['2']['storage_per_s']:.1f}/s "
            "with it (bound: 2 workers x 1 check run per 2 s)"
        )


if __name__ == "__main__":
    with recording("probes", save="--save" in sys.argv):
        main()
