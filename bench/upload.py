"""Benchmark: upload and finalize a large file through a live gunicorn, against a floor.

    .venv/bin/python bench/upload.py [--size-mib 1024] [--parallel 4] [--keep]

Sets up a throwaway installation in a temp directory (Prod configuration, SQLite, local
storage, migrated), creates a token with ``portal_create_token``, starts
``gunicorn boot.wsgi`` (the project's ``gunicorn.conf.py``: gthread workers) on a free
port, and uploads a file of ``--size-mib`` random bytes in 8 MiB parts over a few
parallel keep-alive connections, then finalizes. In the same run, as the floor, it times
``cat`` of the same part files through ``tee`` into one file and ``sha256sum`` (read,
write and one hash: what finalize must do at least).

Prints upload and finalize MB/s, the finalize/floor ratio (target >= 0.6) and the
server's peak RSS (max VmHWM over the gunicorn master and workers; target < 150 MB).
"""

import argparse
import hashlib
import http.client
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.lib.report import recording  # noqa: E402  (after the path is set)

PYTHON = sys.executable
GUNICORN = str(Path(PYTHON).parent / "gunicorn")
MIB = 1024 * 1024
PART = 8 * MIB
RSS_TARGET_MB = 150
RATIO_TARGET = 0.6


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--parallel", type=int, default=4, help="connections uploading parts")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    parser.add_argument("--save", action="store_true", help="write the figures to docs/benchmarks/")
    return parser.parse_args()


def free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(data_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "DJANGO_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "boot.settings",
            "DJANGO_CONFIGURATION": "Prod",
            "SECRET_KEY": "bench-secret-key-not-for-production",
            "DATABASE_URL": f"sqlite:///{data_dir / 'bench.sqlite3'}",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "PORTAL_DRAIN_SECONDS": "0",  # no balancer to leave: stop at once
            "PORTAL_DATA_DIR": str(data_dir),
            "PORTAL_STORAGE": "local",
            "PORTAL_LOG_LEVEL": "info",
            "WEB_CONCURRENCY": "2",
            "GUNICORN_THREADS": "4",
            "GUNICORN_TIMEOUT": "300",
        }
    )
    return env


def manage(env, *args):
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout.strip()


def make_file(path, size):
    """Random bytes, and their sha256 (computed while writing)."""
    digest = hashlib.sha256()
    block = os.urandom(MIB)
    with open(path, "wb") as handle:
        for index in range(size // MIB):
            data = block[index % 256 :] + block[: index % 256]  # every MiB different
            digest.update(data)
            handle.write(data)
        tail = os.urandom(size % MIB)
        digest.update(tail)
        handle.write(tail)
    return digest.hexdigest()


class PeakRss:
    """Samples VmHWM (peak RSS) of a process and its children until stopped."""

    def __init__(self, pid):
        self.pid, self.peak_kb = pid, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _pids(self):
        pids = [self.pid]
        try:
            for task in os.listdir(f"/proc/{self.pid}/task"):
                with open(f"/proc/{self.pid}/task/{task}/children") as handle:
                    pids.extend(int(p) for p in handle.read().split())
        except OSError:
            pass
        return pids

    def sample(self):
        for pid in self._pids():
            try:
                with open(f"/proc/{pid}/status") as handle:
                    for line in handle:
                        if line.startswith("VmHWM:"):
                            self.peak_kb = max(self.peak_kb, int(line.split()[1]))
            except OSError:
                pass

    def _run(self):
        while not self._stop.wait(0.2):
            self.sample()

    def stop(self):
        self.sample()
        self._stop.set()
        self._thread.join()
        return self.peak_kb / 1024


class Server:
    def __init__(self, env, log_path):
        self.port = free_port()
        self._log = open(log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [GUNICORN, "boot.wsgi", "--bind", f"127.0.0.1:{self.port}"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/api/v1/uploads/sessions")
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"gunicorn did not start; see {log_path}")
                time.sleep(0.2)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)
        self._log.close()


class Client:
    """Minimal JSON client over one keep-alive connection per thread."""

    def __init__(self, port, token):
        self.port, self.auth = port, f"Bearer {token}"
        self._local = threading.local()

    def request(self, method, path, body=None, headers=None, timeout=600, fresh=False):
        """``fresh``: a new connection (an idle keep-alive one may have been closed)."""
        conn = getattr(self._local, "conn", None)
        if conn is None or fresh:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            conn.blocksize = 1024 * 1024
            self._local.conn = conn
        conn.request(
            method,
            "/api/v1/uploads/sessions" + path,
            body=body,
            headers={"Authorization": self.auth, **(headers or {})},
        )
        response = conn.getresponse()
        raw = response.read()
        if response.status >= 300:
            sys.exit(f"{method} {path}: HTTP {response.status} {raw[:300]!r}")
        return json.loads(raw) if raw else None


class FilePart:
    def __init__(self, path, offset, length):
        self.handle = open(path, "rb")  # noqa: SIM115
        self.handle.seek(offset)
        self.left = length

    def read(self, size=-1):
        if not self.left:
            return b""
        size = self.left if size < 0 else min(size, self.left)
        data = self.handle.read(size)
        self.left -= len(data)
        if not self.left:
            self.handle.close()
        return data


def upload(client, path, size, parallel):
    body = json.dumps({"filename": path.name, "size_bytes": size, "chunk_size_bytes": PART})
    session = client.request("POST", "", body, {"Content-Type": "application/json"}, fresh=True)
    sid, total = session["id"], session["total_parts"]

    def send(number):
        length = min(PART, size - PART * (number - 1))
        reader = FilePart(path, PART * (number - 1), length)
        headers = {"Content-Length": str(length), "Content-Type": "application/octet-stream"}
        client.request("PUT", f"/{sid}/parts/{number}", reader, headers)

    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(send, range(1, total + 1)))
    return sid


def floor(part_paths, out_path):
    """cat the parts | tee one file | sha256sum: read, write and one hash."""
    os.sync()
    started = time.perf_counter()
    result = subprocess.run(
        ["sh", "-c", 'cat "$@" | tee "$0" | sha256sum', str(out_path), *map(str, part_paths)],
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - started, result.stdout.split()[0]


def part_files(data_dir, sid):
    with sqlite3.connect(data_dir / "bench.sqlite3") as db:
        rows = db.execute(
            "SELECT temp_key FROM portal_uploadpart WHERE session_id = ? ORDER BY part_number",
            [sid.replace("-", "")],
        ).fetchall()
    return [data_dir / "temp" / key for (key,) in rows]


def main():
    args = parse_args()
    size = args.size_mib * MIB
    tmp = Path(tempfile.mkdtemp(prefix="portal-bench-upload-"))
    data_dir = tmp / "data"
    data_dir.mkdir()
    env = environment(data_dir)
    manage(env, "migrate", "--no-input")
    token = manage(env, "portal_create_token", "bench", "--create-user")
    source = tmp / "source.bin"
    expected = make_file(source, size)
    server = Server(env, tmp / "server.log")
    rss = PeakRss(server.proc.pid)
    try:
        client = Client(server.port, token)
        started = time.perf_counter()
        sid = upload(client, source, size, args.parallel)
        upload_s = time.perf_counter() - started
        os.sync()  # start each timed phase without the previous phase's dirty pages
        started = time.perf_counter()
        file = client.request("POST", f"/{sid}/finalize", fresh=True)["file"]
        finalize_s = time.perf_counter() - started
        peak_mb = rss.stop()
    finally:
        server.stop()
    if file["sha256"] != expected:
        sys.exit(f"sha256 mismatch: server {file['sha256']}, expected {expected}")
    floor_s, floor_sha = floor(part_files(data_dir, sid), tmp / "floor.bin")
    assert floor_sha == expected, "floor produced a different sha256"

    mb = size / 1e6
    upload_rate, finalize_rate, floor_rate = mb / upload_s, mb / finalize_s, mb / floor_s
    ratio = finalize_rate / floor_rate
    print(f"file: {args.size_mib} MiB in {size // PART + bool(size % PART)} parts of 8 MiB")
    print(f"upload:   {upload_s:7.2f} s  {upload_rate:8.1f} MB/s  ({args.parallel} connections)")
    print(f"finalize: {finalize_s:7.2f} s  {finalize_rate:8.1f} MB/s")
    print(f"floor:    {floor_s:7.2f} s  {floor_rate:8.1f} MB/s  (cat | tee | sha256sum)")
    verdict = "ok" if ratio >= RATIO_TARGET else "MISSED"
    print(f"finalize / floor: {ratio:.2f}x  (target >= {RATIO_TARGET}x: {verdict})")
    verdict = "ok" if peak_mb < RSS_TARGET_MB else "MISSED"
    print(f"server peak RSS: {peak_mb:.1f} MB  (target < {RSS_TARGET_MB} MB: {verdict})")
    if args.keep:
        print(f"kept {tmp}")
    else:
        subprocess.run(["rm", "-rf", str(tmp)], check=False)


if __name__ == "__main__":
    with recording("upload", save="--save" in sys.argv):
        main()
