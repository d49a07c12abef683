"""The pieces of ``bench/upload.py``: a throwaway installation, gunicorn, a client, the floor."""

import contextlib
import hashlib
import http.client
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.lib import procfs

ROOT = Path(__file__).resolve().parent.parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(PYTHON).parent / "gunicorn")
MIB = 1024 * 1024
PART = 8 * MIB


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
            # glibc's allocator as the deployments tune it (docs/configuration.md, "gunicorn").
            "MALLOC_ARENA_MAX": "2",
            "MALLOC_MMAP_THRESHOLD_": "1048576",
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

    def sample(self):
        for pid in [self.pid, *procfs.children(self.pid)]:
            self.peak_kb = max(self.peak_kb, procfs.peak_rss_kb(pid))

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

    def worker_pid(self):
        """The one worker's pid (run with WEB_CONCURRENCY=1)."""
        with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as handle:
            pids = [int(pid) for pid in handle.read().split()]
        if len(pids) != 1:
            sys.exit(f"expected one gunicorn worker, found {pids}")
        return pids[0]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)
        self._log.close()


class CountingProxy:
    """A TCP relay on loopback that counts the bytes in each direction: put between the
    portal and S3, it tells how many bytes went through the portal (``/proc/<pid>/io``
    does not count socket reads)."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.to_target = self.from_target = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source, sink, upstream):
        try:
            while data := source.recv(1 << 20):
                sink.sendall(data)
                with self._lock:
                    if upstream:
                        self.to_target += len(data)
                    else:
                        self.from_target += len(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def counts(self):
        """(bytes sent to the target, bytes received from it) so far."""
        with self._lock:
            return self.to_target, self.from_target

    def close(self):
        self._listener.close()


def reset_peak_rss(pid):
    """Start VmHWM afresh (``clear_refs`` 5), so the next peak is the next phase's own."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/clear_refs", "w") as handle:
        handle.write("5")


class MotoProcess:
    """A moto S3 server in a process of its own (it must not share the bench's GIL)."""

    def __init__(self, log_path, bucket="bench-upload"):
        self.port = free_port()
        self.bucket = bucket
        self._log = open(log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(Path(PYTHON).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        import boto3

        deadline = time.monotonic() + 30
        while True:
            try:
                boto3.client("s3", **self.credentials()).create_bucket(Bucket=bucket)
                return
            except Exception:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"moto_server did not start; see {log_path}")
                time.sleep(0.2)

    def credentials(self):
        return {
            "endpoint_url": f"http://127.0.0.1:{self.port}",
            "region_name": "us-east-1",
            "aws_access_key_id": "bench",
            "aws_secret_access_key": "bench",
        }

    def env(self, port=None):
        return {
            "PORTAL_STORAGE": "s3",
            "AWS_STORAGE_BUCKET_NAME": self.bucket,
            "AWS_S3_ENDPOINT_URL": f"http://127.0.0.1:{port or self.port}",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_S3_REGION_NAME": "us-east-1",
            "AWS_S3_READ_TIMEOUT_SECONDS": "120",
        }

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
        self.last_status = response.status
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
    """The session's temp files in part order, each once (parts written in place share
    one assembly file, which then holds the whole file)."""
    with sqlite3.connect(data_dir / "bench.sqlite3") as db:
        rows = db.execute(
            "SELECT temp_key FROM portal_uploadpart WHERE session_id = ? ORDER BY part_number",
            [sid.replace("-", "")],
        ).fetchall()
    return list(dict.fromkeys(data_dir / "temp" / key for (key,) in rows))


def finalize(client, sid, poll_seconds=0.2):
    """POST finalize, then poll GET while it is assembled: (file, seconds, longest request)."""
    started = time.perf_counter()
    body = client.request("POST", f"/{sid}/finalize", fresh=True)
    longest = time.perf_counter() - started
    while client.last_status == 202 or body.get("status") == "finalizing":
        time.sleep(poll_seconds)
        asked = time.perf_counter()
        body = client.request("GET", f"/{sid}")
        longest = max(longest, time.perf_counter() - asked)
        if body["status"] == "complete":
            break
    seconds = time.perf_counter() - started
    return body["file"], seconds, longest
