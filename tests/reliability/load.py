"""The load driver of ``test_load.py``: client threads that upload, abandon and finalize
files over keep-alive connections, a prober that asks the probes as a load balancer does,
and a loop that runs ``portal_cleanup`` meanwhile.
"""

import hashlib
import http.client
import json
import os
import random
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from tests.conftest import PYTHON, ROOT, TEST_STORAGE

KIB = 1024
MIB = 1024 * KIB
BASE = "/api/v1/uploads/sessions"
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
CLIENTS = 20
CHUNK = 256 * KIB
MIN_SIZE, MAX_SIZE = 1 * MIB, 4 * MIB
DEFAULT_FILES = 40 if TEST_STORAGE == "s3" else 200


def load_files():
    return int(os.environ.get("PORTAL_LOAD_FILES", DEFAULT_FILES))


@dataclass
class Stats:
    """What the clients saw: status codes per request kind, failures, bytes, timings."""

    statuses: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)
    reconnects: int = 0
    bytes_sent: int = 0
    files: dict = field(default_factory=dict)  # file id -> (sha256, size)
    aborted: list = field(default_factory=list)  # session ids
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind, status):
        with self.lock:
            self.statuses[status] += 1
            self.kinds[kind] += 1

    def fail(self, message):
        with self.lock:
            self.failures.append(message)

    @property
    def requests(self):
        return sum(self.statuses.values())

    @property
    def server_errors(self):
        return sum(n for status, n in self.statuses.items() if status >= 500)


class Connection:
    """One keep-alive connection; a request that finds it closed by the server (idle
    timeout) is sent again once on a fresh one: every API call here is idempotent."""

    def __init__(self, port, token, stats):
        self.port, self.stats = port, stats
        self.headers = {"Authorization": f"Bearer {token}"}
        self.conn = None

    def request(self, kind, method, path, body=None, content_type=None):
        headers = dict(self.headers)
        if content_type:
            headers["Content-Type"] = content_type
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                payload = response.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt == 2:
                    raise
                with self.stats.lock:
                    self.stats.reconnects += 1
        self.stats.record(kind, response.status)
        data = json.loads(payload) if payload else None
        if response.status >= 500:
            self.stats.fail(f"{method} {path}: {response.status} {payload[:200]!r}")
        return response.status, data

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def file_bytes(index, seed):
    rng = random.Random(f"{seed}-{index}")
    return rng.randbytes(rng.randint(MIN_SIZE, MAX_SIZE))


def upload_one(conn, index, seed, stats):
    """Create, send the parts (shuffled), finalize; check the server's sha256."""
    data = file_bytes(index, seed)
    digest = hashlib.sha256(data).hexdigest()
    body = {
        "filename": f"load-{index:04d}-Übersicht ✓.bin",
        "content_type": "application/octet-stream",
        "size_bytes": len(data),
        "chunk_size_bytes": CHUNK,
        "idempotency_key": f"load-{seed}-{index}",
    }
    status, session = conn.request(
        "create", "POST", BASE, json.dumps(body).encode(), "application/json"
    )
    if status != 201:
        stats.fail(f"file {index}: create answered {status} {session}")
        return
    numbers = list(range(1, session["total_parts"] + 1))
    random.Random(index).shuffle(numbers)
    for number in numbers:
        part = data[(number - 1) * CHUNK : number * CHUNK]
        status, receipt = conn.request(
            "part",
            "PUT",
            f"{BASE}/{session['id']}/parts/{number}",
            part,
            "application/octet-stream",
        )
        if status not in (200, 201):
            stats.fail(f"file {index} part {number}: {status} {receipt}")
            return
        with stats.lock:
            stats.bytes_sent += len(part)
    status, answer = conn.request("finalize", "POST", f"{BASE}/{session['id']}/finalize")
    if status != 200:
        stats.fail(f"file {index}: finalize answered {status} {answer}")
        return
    if answer["file"]["sha256"] != digest:
        stats.fail(f"file {index}: server sha256 {answer['file']['sha256']} != {digest}")
    with stats.lock:
        stats.files[answer["file"]["id"]] = (digest, len(data))


def abandon_one(conn, index, stats):
    """A session with one part, then aborted: work for cleanup's orphans step."""
    body = {
        "filename": f"abandoned-{index}.bin",
        "size_bytes": 2 * CHUNK,
        "chunk_size_bytes": CHUNK,
    }
    status, session = conn.request(
        "create", "POST", BASE, json.dumps(body).encode(), "application/json"
    )
    if status != 201:
        stats.fail(f"abandoned {index}: create answered {status} {session}")
        return
    path = f"{BASE}/{session['id']}"
    status, _ = conn.request("part", "PUT", f"{path}/parts/1", os.urandom(CHUNK), "x/y")
    status_abort, _ = conn.request("abort", "DELETE", path)
    if (status, status_abort) != (201, 204):
        stats.fail(f"abandoned {index}: part {status}, abort {status_abort}")
        return
    with stats.lock:
        stats.aborted.append(session["id"])


def run_clients(port, token, *, files, clients=CLIENTS, seed="load"):
    """Upload ``files`` files over ``clients`` threads; returns (Stats, seconds)."""
    stats = Stats()
    queue = list(range(files))
    queue_lock = threading.Lock()

    def client(number):
        conn = Connection(port, token, stats)
        try:
            abandon_one(conn, number, stats)
            while True:
                with queue_lock:
                    if not queue:
                        return
                    index = queue.pop(0)
                upload_one(conn, index, seed, stats)
        except Exception as exc:  # a client crash is a finding, not a test error
            stats.fail(f"client {number}: {type(exc).__name__}: {exc}")
        finally:
            conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return stats, time.monotonic() - started


class Background:
    """Runs ``step`` over and over in a thread until stopped."""

    def __init__(self, step, pause):
        self.step, self.pause = step, pause
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped.is_set():
            self.step()
            self.stopped.wait(self.pause)

    def stop(self):
        self.stopped.set()
        self.thread.join(timeout=120)


class Prober:
    """Asks /ready and /health on fresh connections, like a load balancer."""

    def __init__(self, port):
        self.port = port
        self.results = Counter()
        self.bad = []

    def probe(self):
        for path in ("/ready", "/health"):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                body = response.read()
                self.results[(path, response.status)] += 1
                if response.status != 200:
                    self.bad.append((path, response.status, body[:300]))
            except OSError as exc:
                self.results[(path, type(exc).__name__)] += 1
                self.bad.append((path, type(exc).__name__, str(exc)))
            finally:
                conn.close()


class CleanupLoop:
    """``manage.py portal_cleanup --json`` as a subprocess, again and again."""

    def __init__(self, env):
        self.env = env
        self.runs = []  # (exit code, summary or output)

    def run_once(self):
        result = subprocess.run(
            [PYTHON, "manage.py", "portal_cleanup", "--json"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        summary = None
        for line in result.stdout.splitlines():
            if line.startswith('{"command": "portal_cleanup"'):
                summary = json.loads(line)
        self.runs.append((result.returncode, summary or result.stdout + result.stderr))


def summary_line(stats, seconds, *, files, probes, cleanups):
    megabytes = stats.bytes_sent / 1e6
    return (
        f"load: {files} files, {CLIENTS} clients, {stats.requests} requests "
        f"({dict(stats.kinds)}), errors {len(stats.failures)}, 5xx {stats.server_errors}, "
        f"reconnects {stats.reconnects}, {megabytes:.0f} MB in {seconds:.1f} s = "
        f"{megabytes / seconds:.1f} MB/s; probes {sum(probes.values())} "
        f"({dict(probes)}); cleanup runs {cleanups}"
    )
