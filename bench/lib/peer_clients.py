"""bench/peer.py's client: keep-alive ``http.client`` connections streaming file slices,
to the portal (``PUT .../parts/{n}``) and to the tus server (``PATCH`` with offsets)."""

import http.client
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

SEND_BLOCK = 1024 * 1024
IDLE_RECONNECT_S = 2.0  # both servers keep an idle connection open for 5 s


class Connections:
    """One keep-alive ``http.client`` connection per client thread."""

    def __init__(self, port):
        self.port = port
        self._local = threading.local()

    def request(self, method, path, body=None, headers=None):
        conn = getattr(self._local, "conn", None)
        idle = time.monotonic() - getattr(self._local, "used", 0.0)
        if conn is None or idle > IDLE_RECONNECT_S:  # the server may have closed it
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
            conn.blocksize = SEND_BLOCK
            self._local.conn = conn
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        raw = response.read()
        self._local.used = time.monotonic()
        if response.status >= 300:
            sys.exit(f"{method} {path}: HTTP {response.status} {raw[:300]!r}")
        return response, raw


class FileSlice:
    """``length`` bytes of ``path`` from ``offset``, read as http.client asks for them."""

    def __init__(self, path, offset, length):
        self.handle = open(path, "rb", buffering=0)  # noqa: SIM115
        self.handle.seek(offset)
        self.left = length

    def read(self, size=-1):
        size = self.left if size < 0 else min(size, self.left)
        data = self.handle.read(size) if size else b""
        self.left -= len(data)
        if not self.left:
            self.handle.close()
        return data


class Plan:
    """The file and how it is cut: chunk ``n`` (from 1) is bytes ``offset(n)`` on."""

    def __init__(self, path, size, chunk):
        self.path, self.size, self.chunk = path, size, chunk
        self.chunks = -(-size // chunk)

    def offset(self, number):
        return (number - 1) * self.chunk

    def length(self, number):
        return min(self.chunk, self.size - self.offset(number))

    def body(self, number):
        return FileSlice(self.path, self.offset(number), self.length(number))

    def groups(self, parallel):
        """Chunk numbers in ``parallel`` contiguous runs (the peer's uploads)."""
        per = -(-self.chunks // parallel)
        numbers = list(range(1, self.chunks + 1))
        return [numbers[i : i + per] for i in range(0, self.chunks, per)]


class PortalClient:
    def __init__(self, port, token):
        self.http = Connections(port)
        self.auth = {"Authorization": f"Bearer {token}"}

    def _call(self, method, path, body=None, headers=None):
        _response, raw = self.http.request(
            method, "/api/v1/uploads/sessions" + path, body, {**self.auth, **(headers or {})}
        )
        return json.loads(raw) if raw else None

    def upload(self, plan, parallel):
        """Create a session and send every part; returns the session id."""
        body = json.dumps(
            {"filename": "peer.bin", "size_bytes": plan.size, "chunk_size_bytes": plan.chunk}
        )
        session = self._call("POST", "", body, {"Content-Type": "application/json"})
        sid = session["id"]

        def send(number):
            headers = {
                "Content-Length": str(plan.length(number)),
                "Content-Type": "application/octet-stream",
            }
            self._call("PUT", f"/{sid}/parts/{number}", plan.body(number), headers)

        numbers = range(1, plan.chunks + 1)
        if parallel == 1:
            for number in numbers:
                send(number)
        else:
            with ThreadPoolExecutor(parallel) as pool:
                list(pool.map(send, numbers))
        return sid

    def finalize(self, sid):
        return self._call("POST", f"/{sid}/finalize")["file"]


class TusClient:
    """A tus client: the peer's ``/files``, or the portal's ``/api/v1/tus/`` with its token."""

    def __init__(self, port, endpoint="/files", token=None):
        self.http = Connections(port)
        self.endpoint = endpoint
        self.HEADERS = {"Tus-Resumable": "1.0.0"}
        if token:
            self.HEADERS["Authorization"] = f"Bearer {token}"

    def upload(self, plan, parallel):
        """One upload per contiguous group of chunks, ``parallel`` at a time."""
        groups = plan.groups(parallel)
        if len(groups) == 1:
            return [self._upload_group(plan, groups[0])]
        with ThreadPoolExecutor(len(groups)) as pool:
            return list(pool.map(lambda group: self._upload_group(plan, group), groups))

    def _upload_group(self, plan, numbers):
        length = sum(plan.length(n) for n in numbers)
        response, _ = self.http.request(
            "POST", self.endpoint, b"", {**self.HEADERS, "Upload-Length": str(length)}
        )
        path = urlsplit(response.getheader("Location")).path
        offset = 0
        for number in numbers:
            headers = {
                **self.HEADERS,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(plan.length(number)),
            }
            response, _ = self.http.request("PATCH", path, plan.body(number), headers)
            offset = int(response.getheader("Upload-Offset"))
        if offset != length:
            sys.exit(f"tus upload {path} ended at offset {offset} of {length}")
        return path.rsplit("/", 1)[1], numbers


def warm_up(servers, token, plan, parallel):
    """Two untimed uploads of the first chunks to each server, over every connection.

    Loads the lazily imported code of each gunicorn worker and lets Node's JIT compile
    the peer's hot path, so neither server's first timed run pays for its start-up.
    """
    small = Plan(plan.path, min(plan.size, parallel * 2 * plan.chunk), plan.chunk)
    for _ in range(2):
        if "portal" in servers:
            client = PortalClient(servers["portal"].port, token)
            client.finalize(client.upload(small, parallel))
        if "peer" in servers:
            TusClient(servers["peer"].port).upload(small, parallel)
