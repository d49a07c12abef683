"""Clients of the topology tests: an HTTP(S) connection from a chosen loopback address,
an uploader that records every request it makes, probe statistics.

Each client connects from its own address in 127.0.0.0/8 (all of it is loopback on
Linux), as clients on a network would: nginx's per-address limits then see separate
clients, as they would in production.
"""

import hashlib
import http.client
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tests.topology.programs import SERVER_NAME

BASE = "/api/v1/uploads/sessions"
KIB = 1024


def loopback(network, index):
    """The ``index``-th address of ``127.<network>.0.0/16`` (never .0 or .255)."""
    return f"127.{network}.{index // 250}.{index % 250 + 1}"


class Client:
    """One keep-alive connection to ``port`` (TLS with ``context``), from ``source``."""

    def __init__(
        self, port, *, context=None, source="127.0.0.1", token=None, timeout=30, headers=None
    ):
        self.port, self.context, self.source, self.timeout = port, context, source, timeout
        self.headers = {"Host": SERVER_NAME, **(headers or {})}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.conn = None

    def _connect(self):
        address = (self.source, 0)
        if self.context is not None:
            return http.client.HTTPSConnection(
                "127.0.0.1", self.port, context=self.context, timeout=self.timeout,
                source_address=address,
            )  # fmt: skip
        return http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=self.timeout, source_address=address
        )

    def request(self, method, path, body=None, headers=None):
        """(status, headers, body bytes). No retry: a broken connection raises."""
        if self.conn is None:
            self.conn = self._connect()
        try:
            self.conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
            response = self.conn.getresponse()
            payload = response.read()
        except Exception:
            self.close()
            raise
        if response.will_close:
            self.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@dataclass
class Outcome:
    started: float
    ended: float
    what: str
    ok: bool
    detail: str = ""


@dataclass
class Uploader:
    """Uploads files until stopped: create, parts in parallel, finalize. No retries.

    ``sources`` are the loopback addresses of its connections (one for the session
    calls, one per parallel part stream). Every request is recorded with its start and
    end (monotonic) and whether it got the answer the API promises.
    """

    connect: object  # source address -> Client
    sources: list
    part_size: int = 256 * KIB
    parts: tuple = (3, 6)  # parts per file: at least, at most
    seed: str = "topology"
    outcomes: list = field(default_factory=list)
    files: dict = field(default_factory=dict)  # file id -> (sha256, size, session id)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, stop, max_files=10_000):
        control = self.connect(self.sources[0])
        part_clients = [self.connect(source) for source in self.sources[1:]]
        with ThreadPoolExecutor(len(part_clients)) as pool:
            for index in range(max_files):
                if stop.is_set():
                    break
                self.upload(index, control, part_clients, pool)
        for client in [control, *part_clients]:
            client.close()

    def upload(self, index, control, part_clients, pool):
        rng = random.Random(f"{self.seed}-{index}")
        size = rng.randint(self.parts[0] * self.part_size, self.parts[1] * self.part_size)
        data = rng.randbytes(size)
        body = {
            "filename": f"{self.seed}-{index}.bin",
            "size_bytes": size,
            "chunk_size_bytes": self.part_size,
            "idempotency_key": f"{self.seed}-{index}",
        }
        session = self.call(
            control, "create", "POST", BASE, json.dumps(body).encode(), {201},
            {"Content-Type": "application/json"},
        )  # fmt: skip
        if session is None:
            return
        numbers = list(range(1, session["total_parts"] + 1))
        lanes = [numbers[i :: len(part_clients)] for i in range(len(part_clients))]

        def send(client, lane):
            for number in lane:
                part = data[(number - 1) * self.part_size : number * self.part_size]
                path = f"{BASE}/{session['id']}/parts/{number}"
                headers = {"Content-Type": "application/octet-stream"}
                if self.call(client, "part", "PUT", path, part, {201}, headers) is None:
                    return False
            return True

        sent = list(pool.map(send, part_clients, lanes))
        if not all(sent):
            return
        finalize = f"{BASE}/{session['id']}/finalize"
        answer = self.call(control, "finalize", "POST", finalize, None, {200})
        if answer is None:
            return
        digest = hashlib.sha256(data).hexdigest()
        if answer["file"]["sha256"] != digest:
            self.record(time.monotonic(), "finalize", False, f"sha256 {answer['file']['sha256']}")
            return
        with self.lock:
            self.files[answer["file"]["id"]] = (digest, size, session["id"])

    def call(self, client, what, method, path, body, expected, headers=None):
        started = time.monotonic()
        try:
            status, _, payload = client.request(method, path, body, headers)
        except Exception as exc:  # any error is an outcome to count, not a test crash
            self.record(started, what, False, f"{type(exc).__name__}: {exc}")
            return None
        if status not in expected:
            self.record(started, what, False, f"{status} {payload[:200]!r}")
            return None
        self.record(started, what, True)
        return json.loads(payload)

    def record(self, started, what, ok, detail=""):
        with self.lock:
            self.outcomes.append(Outcome(started, time.monotonic(), what, ok, detail))

    def failures(self, since=float("-inf")):
        """Failed requests that started at or after ``since`` (monotonic)."""
        with self.lock:
            return [o for o in self.outcomes if not o.ok and o.started >= since]


def percentile(values, fraction):
    """The nearest-rank percentile of ``values`` (``fraction`` 0.5 = median)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]
