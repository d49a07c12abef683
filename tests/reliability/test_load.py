"""Load: 20 concurrent clients upload many files through a real gunicorn while cleanup and
probes run.

The server is ``gunicorn -c gunicorn.conf.py boot.wsgi`` (gthread workers) on a free
port, sharing the test database and storage. Twenty client threads, each on its own
keep-alive connection, upload ``PORTAL_LOAD_FILES`` files of 1-4 MiB in 256 KiB parts
(parts of one file in shuffled order) and finalize them; each client also starts and
aborts one session, so cleanup has parts to reclaim while uploads go on. Meanwhile
``manage.py portal_cleanup`` runs again and again as a subprocess and a prober asks
``/ready`` and ``/health`` several times a second on fresh connections (as a load
balancer does).

Outcome, not timing, is asserted: every file is ``stored`` with the sha256 the client
computed (in the server's answer, in the database, and over the bytes read back through
``portal.storage.iter_final``), every probe answered 200, no request answered 5xx, every
cleanup run exited 0, and the server logged no ERROR line. The figures (requests, errors,
duration, throughput) are printed as one summary line.

With ``PORTAL_TEST_STORAGE=s3`` the bucket lives in a moto server of its own process
(``moto_server``), as S3 would: the suite's in-process moto server would share the test
process's interpreter lock with the twenty clients and starve. Size: ``PORTAL_LOAD_FILES``
(default 200 on local storage, 40 on S3, where every byte also goes through moto three
times: part, assembly, read-back).
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

import pytest

from portal import storage
from portal.models import IngestFile, UploadPart, UploadSession
from portal.services.tokens import create_token
from tests.conftest import PYTHON, ROOT, TEST_STORAGE, MotoS3, apply_storage, free_port
from tests.reliability import invariants

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

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


# --- the load driver (also used by bench/load.py) ----------------------------------------


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


# --- the test ----------------------------------------------------------------------------


class Gunicorn:
    def __init__(self, env, log_path):
        self.port = free_port()
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            [GUNICORN, "-c", "gunicorn.conf.py", "boot.wsgi"],
            cwd=ROOT,
            env={**env, "HOST": "127.0.0.1", "PORT": str(self.port)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"gunicorn exited: {self.output()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"gunicorn did not serve: {self.output()}")
            time.sleep(0.1)

    def output(self):
        return self.log_path.read_text(errors="replace")

    def records(self):
        lines = self.output().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")], lines

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class MotoProcess(MotoS3):
    """A moto S3 server in a process of its own."""

    def start(self):
        self.server = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/")
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                if self.server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("moto_server did not start") from None
                time.sleep(0.1)

    def stop(self):
        if self.server is not None:
            self.server.terminate()
            self.server.wait(timeout=30)
            self.server = None


@pytest.fixture
def load_env(subprocess_env, settings, data_dir):
    """``subprocess_env``; on S3 pointed (with this process's storage) at a moto process."""
    if TEST_STORAGE != "s3":
        yield subprocess_env
        return
    s3 = MotoProcess()
    try:
        yield {
            **subprocess_env,
            **apply_storage(settings, "s3", data_dir, s3=s3, bucket=s3.new_bucket()),
        }
    finally:
        s3.stop()


def sha256_of_final(key):
    digest, size = hashlib.sha256(), 0
    for chunk in storage.iter_final(key):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def test_many_clients_upload_through_gunicorn_while_cleanup_and_probes_run(
    load_env, user, tmp_path
):
    files = load_files()
    token = create_token(user, name="load")[1]
    env = {
        **load_env,
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "8",
        "GUNICORN_TIMEOUT": "120",
        # The readiness budget (default 3 s) is raised: on this shared 2-core machine the
        # S3 stand-in (moto) competes for CPU with twenty clients and the server, so one
        # storage round trip can take seconds; real S3 answers in milliseconds.
        "PORTAL_HEALTH_CHECK_TIMEOUT_SECONDS": "10",
    }
    server = Gunicorn(env, tmp_path / "gunicorn.log")
    prober, cleanup = Prober(server.port), CleanupLoop(load_env)
    try:
        background = [Background(prober.probe, 0.2), Background(cleanup.run_once, 0.5)]
        try:
            stats, seconds = run_clients(server.port, token, files=files)
        finally:
            for job in background:
                job.stop()
    finally:
        server.stop()
    print(
        "\n"
        + summary_line(
            stats, seconds, files=files, probes=prober.results, cleanups=len(cleanup.runs)
        )
    )

    assert stats.failures == []
    assert stats.server_errors == 0, stats.statuses
    assert len(stats.files) == files
    # The server side of the same story: every access line, no 5xx, no ERROR record.
    records, lines = server.records()
    assert len(records) == len(lines), "every line gunicorn printed is a JSON record"
    assert [r for r in records if r["level"] in ("ERROR", "CRITICAL")] == []
    assert not [r for r in records if r.get("status_code", 0) >= 500]
    # Probes: many, all 200 (a failing /ready would also have logged an ERROR access line).
    assert prober.bad == []
    assert prober.results[("/ready", 200)] >= 5 and prober.results[("/health", 200)] >= 5
    # Cleanup ran during the load, and every run ended well (0: done or skipped).
    assert len(cleanup.runs) >= 2
    assert [run for run in cleanup.runs if run[0] != 0] == []

    # Every file is stored with the client's sha256, and its object holds exactly those bytes.
    stored = {
        str(f.id): f for f in IngestFile.objects.filter(id__in=list(stats.files)).select_related()
    }
    assert len(stored) == files
    for file_id, (digest, size) in stats.files.items():
        file = stored[file_id]
        assert (file.status, file.sha256, file.size_bytes) == ("stored", digest, size)
        assert sha256_of_final(file.storage_key) == (digest, size)
    assert UploadSession.objects.filter(status="complete").count() == files
    assert UploadSession.objects.filter(status="aborted").count() == CLIENTS

    # One more cleanup after the load: nothing of an aborted or complete session keeps a
    # temp object (the runs during the load may have missed the last parts).
    cleanup.run_once()
    assert cleanup.runs[-1][0] == 0
    assert not UploadPart.objects.exclude(temp_key="").exists()
    assert list(storage.list_temp()) == []
    assert invariants.summarize(invariants.check_all()) == "0"
