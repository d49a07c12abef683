"""``manage.py portal_upload PATH --url URL``: a resumable upload client, standard library
HTTP only (the reference for other clients).

The idempotency key comes from the file (path, size, mtime): run again after an
interruption, it finds the same session and sends only the parts the server lacks.
"""

import argparse
import hashlib
import http.client
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError

from portal import exitcodes, limits
from portal.httpclient import KeepAliveConnection, TLSFailed, backoff_delay, http_url_problem
from portal.management.base import bounded_int, bounded_seconds
from portal.management.token_source import api_token
from portal.parts import OPEN_STATUSES, parse_ranges, part_offset, part_size

API_PREFIX = "/api/v1"
SEND_BLOCK = 256 * 1024
RETRYABLE_STATUS = {408, 429, 500, 502, 503, 504}
RETRYABLE_CODES = {"part_in_progress"}  # another request is still sending that part
MAX_BACKOFF_SECONDS = 30.0
# A request may take --timeout plus the time to send its body at this rate: a trickling
# server cannot hold the client, a slow link can still send a large part.
SLOWEST_SEND_RATE = 64 * 1024


def http_url(text):
    """argparse type for ``--url``: the same rule as the settings' URLs."""
    if problem := http_url_problem(text):
        raise argparse.ArgumentTypeError(f"{text!r} {problem}")
    return text


class UploadFailed(Exception):
    """A clear, final reason the upload cannot finish."""


class Transient(Exception):
    """Worth retrying: a broken connection, a timeout, a 5xx, a part still being sent."""


class _PartReader:
    """``length`` bytes of the file from ``offset``: one part, read as it is sent."""

    def __init__(self, path, offset, length):
        self._file = open(path, "rb")  # noqa: SIM115 (closed by close(), after the request)
        self._file.seek(offset)
        self._left = length

    def read(self, size):
        data = self._file.read(min(size, self._left))
        self._left -= len(data)
        return data

    def close(self):
        self._file.close()


class ApiClient:
    """JSON requests to the upload API over keep-alive connections, one per thread."""

    def __init__(self, url, token, *, timeout, retries, backoff=0.5):
        parts = urlsplit(url)
        self._scheme, self._host, self._port = parts.scheme, parts.hostname, parts.port
        prefix = parts.path.rstrip("/")
        self.prefix = prefix if prefix.endswith(API_PREFIX) else prefix + API_PREFIX
        self._auth = f"Bearer {token}"
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self._local = threading.local()

    def call(self, what, method, path, *, body=None, length=None, ok=(200, 201)):
        """``(status, json)``, transient failures retried; a status not in ``ok`` ends the
        upload, named by ``what``. ``body`` is a factory: a retry sends it again."""
        for attempt in range(self.retries + 1):
            try:
                status, payload = self._once(method, path, body, length)
            except Transient as exc:
                if attempt == self.retries:
                    raise UploadFailed(
                        f"{method} {self.prefix}{path}: {exc} (gave up after {attempt + 1} tries)"
                    ) from None
                time.sleep(backoff_delay(attempt, base=self.backoff, cap=MAX_BACKOFF_SECONDS))
                continue
            if status not in ok:
                raise UploadFailed(f"{what} failed: {describe(status, payload)}")
            return status, payload
        raise AssertionError("unreachable")

    def _once(self, method, path, body, length):
        url = self.prefix + path
        headers = {"Authorization": self._auth, "Accept": "application/json"}
        if body is not None:
            binary = length is not None
            headers["Content-Type"] = "application/octet-stream" if binary else "application/json"
        if length is not None:
            headers["Content-Length"] = str(length)
        budget = self.timeout + (length or 0) / SLOWEST_SEND_RATE
        try:
            answer = self._connection().exchange(
                method, url, headers=headers, body=body, timeout=budget
            )
        except TLSFailed as exc:
            raise UploadFailed(f"{method} {url}: {exc}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise Transient(f"connection failed: {type(exc).__name__}: {exc}") from None
        if answer.status in RETRYABLE_STATUS:
            raise Transient(f"HTTP {answer.status}")
        try:
            payload = json.loads(answer.body) if answer.body else {}
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            snippet = answer.body[:200].decode("utf-8", "replace")
            if answer.status < 300:  # not the portal answering
                raise UploadFailed(
                    f"{method} {url}: HTTP {answer.status} but the answer is not "
                    f"the portal's JSON ({snippet!r}): is --url the portal's address?"
                )
            return answer.status, {"error": {"code": "not_json", "message": snippet}}
        error = payload.get("error")
        if isinstance(error, dict) and error.get("code") in RETRYABLE_CODES:
            raise Transient(f"HTTP {answer.status} {error['code']}")
        return answer.status, payload

    def _connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = KeepAliveConnection(
                self._scheme, self._host, self._port, timeout=self.timeout, blocksize=SEND_BLOCK
            )
            self._local.conn = conn
        return conn


def describe(status, body):
    """One line for an error answer; an ``error`` that is no object (a proxy's own JSON,
    ``{"error": "Not Found"}``) is no code or message: the answer is quoted whole."""
    error = body.get("error")
    if not isinstance(error, dict):
        error = {}
    return f"HTTP {status} {error.get('code', '')}: {error.get('message', body)}"


def derived_idempotency_key(path):
    """Same file (path, size, mtime) -> same key -> a rerun resumes the same session."""
    stat = os.stat(path)
    identity = f"{os.path.realpath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}"
    return "portal-upload-" + hashlib.sha256(identity.encode()).hexdigest()[:40]


class Uploader:
    def __init__(self, client, path, *, out, err, parallel, finalize_wait):
        self.client, self.path, self.out, self.err = client, path, out, err
        self.parallel = parallel
        self.finalize_wait = finalize_wait
        self.size = os.path.getsize(path)

    def run(self, *, chunk_size, idempotency_key, content_type):
        """The stored file's description, from whatever state the session is in."""
        session = self.create_session(chunk_size, idempotency_key, content_type)
        sid, status = session["id"], session["status"]
        if status in OPEN_STATUSES:
            self.send_missing(session)
        elif status == "finalizing":
            self.out.write(f"session {sid} is being assembled; waiting for it")
        elif status == "complete":
            self.out.write(f"session {sid} is already complete")
            return self.status(sid)["file"]
        else:
            raise UploadFailed(
                f"session {sid} is {status}; start a new one with another --idempotency-key"
            )
        return self.finalize(sid)

    def create_session(self, chunk_size, idempotency_key, content_type):
        request = {
            "filename": os.path.basename(self.path) or "upload.bin",
            "content_type": content_type,
            "size_bytes": self.size,
            "idempotency_key": idempotency_key,
        }
        if chunk_size:
            request["chunk_size_bytes"] = chunk_size
        data = json.dumps(request).encode()
        status, body = self.client.call(
            "creating the session", "POST", "/uploads/sessions", body=lambda: data
        )
        self.out.write(
            f"session {body['id']} ({'new' if status == 201 else 'existing'}): "
            f"{body['total_parts']} parts of {body['chunk_size_bytes']} bytes"
        )
        return body

    def status(self, sid):
        what = "asking for the session's status"
        return self.client.call(what, "GET", f"/uploads/sessions/{sid}", ok=(200,))[1]

    def send_missing(self, session):
        sid, total = session["id"], session["total_parts"]
        chunk = session["chunk_size_bytes"]
        received = set(parse_ranges(self.status(sid)["received_parts"]))
        missing = [n for n in range(1, total + 1) if n not in received]
        if received:
            self.out.write(f"resuming: {len(received)} of {total} parts already on the server")
        done = sum(part_size(n, chunk, self.size) for n in received)
        sent, started, show = 0, time.monotonic(), self.err.isatty()
        try:
            with ThreadPoolExecutor(max_workers=self.parallel) as pool:
                sizes = pool.map(lambda n: self.send_part(sid, n, chunk), missing)
                for parts, size in enumerate(sizes, len(received) + 1):
                    sent += size
                    if show:  # one self-overwriting line
                        rate = sent / max(time.monotonic() - started, 1e-6) / 2**20
                        self.err.write(
                            f"\r  {parts}/{total} parts  "
                            f"{(done + sent) / 2**20:.1f}/{self.size / 2**20:.1f} MiB  "
                            f"{rate:.1f} MiB/s "
                        )
                        self.err.flush()
        finally:
            if show:
                self.err.write("\n")
        self.out.write(f"uploaded {len(missing)} parts")

    def send_part(self, sid, number, chunk):
        length, offset = part_size(number, chunk, self.size), part_offset(number, chunk)
        status, body = self.client.call(
            f"part {number}",
            "PUT",
            f"/uploads/sessions/{sid}/parts/{number}",
            body=lambda: _PartReader(self.path, offset, length),
            length=length,
            ok=(200, 201, 409),
        )
        if status == 409:
            raise UploadFailed(
                f"part {number} failed: {describe(status, body)}; the file changed since that "
                "part was sent: use another --idempotency-key"
            )
        return length

    def finalize(self, sid):
        """POST finalize; on 202 (the file is still being assembled) poll until done."""
        path = f"/uploads/sessions/{sid}/finalize"
        status, body = self.client.call("finalize", "POST", path, ok=(200, 202))
        deadline = time.monotonic() + self.finalize_wait
        attempt = 0
        while status == 202 and time.monotonic() < deadline:
            time.sleep(min(backoff_delay(attempt, base=1.0, cap=10.0), 10.0))
            attempt += 1
            body = self.status(sid)
            if body["status"] == "complete":
                return body["file"]
            if body["status"] != "finalizing":
                reason = body.get("failure_reason", body["status"])
                raise UploadFailed(f"finalize failed: the session is {body['status']}: {reason}")
            assembly = body.get("assembly", {})
            self.err.write(
                f"  assembling: {assembly.get('assembled_bytes', 0)} of "
                f"{assembly.get('total_bytes', '?')} bytes\n"
            )
        if status == 200:
            return body["file"]
        raise UploadFailed(
            f"finalize: the file was still being assembled after {self.finalize_wait:g} s; "
            "run the command again to keep waiting"
        )


class Command(BaseCommand):
    help = "Upload a file through the portal's HTTP API (resumable; stdlib HTTP only)."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument(
            "--url", required=True, type=http_url, help="the portal, e.g. https://portal:8000"
        )
        token = parser.add_mutually_exclusive_group()
        token.add_argument(
            "--token-file", help="a file holding the API token (default: $PORTAL_TOKEN)"
        )
        token.add_argument(
            "--token", help="the API token; visible to every local user in `ps`: prefer the others"
        )
        parser.add_argument(
            "--chunk-size",
            type=bounded_int(limits.MAX_CHUNK_SIZE),
            help="bytes per part (default: the server's)",
        )
        parser.add_argument(
            "--idempotency-key",
            help="default: derived from the file's path, size and mtime (a rerun resumes)",
        )
        parser.add_argument("--content-type", default="application/octet-stream")
        parser.add_argument(
            "--parallel",
            type=bounded_int(limits.MAX_CLIENT_PARALLEL),
            default=2,
            help="parts in flight",
        )
        parser.add_argument(
            "--retries",
            type=bounded_int(limits.MAX_CLIENT_RETRIES, lower=0),
            default=4,
            help="retries per request",
        )
        parser.add_argument(
            "--timeout",
            type=bounded_seconds(limits.MAX_CLIENT_TIMEOUT_SECONDS),
            default=60.0,
            help="seconds a request may take in all (a part: 1 s more per 64 KiB it carries)",
        )
        parser.add_argument(
            "--finalize-wait",
            type=bounded_seconds(limits.MAX_CLIENT_TIMEOUT_SECONDS),
            default=3600.0,
            help="seconds to wait for a large file's assembly after finalize (polling)",
        )

    def handle(self, *args, path, **options):
        token = api_token(options["token"], options["token_file"])
        if not os.path.isfile(path) or os.path.getsize(path) == 0:
            raise CommandError(
                f"{path}: not a readable, non-empty file", returncode=exitcodes.USAGE
            )
        client = ApiClient(
            options["url"], token, timeout=options["timeout"], retries=options["retries"]
        )
        uploader = Uploader(
            client,
            path,
            out=self.stdout,
            err=sys.stderr,
            parallel=options["parallel"],
            finalize_wait=options["finalize_wait"],
        )
        try:
            file = uploader.run(
                chunk_size=options["chunk_size"],
                idempotency_key=options["idempotency_key"] or derived_idempotency_key(path),
                content_type=options["content_type"],
            )
        except UploadFailed as exc:
            raise CommandError(str(exc)) from None
        with open(path, "rb") as local_file:
            local = hashlib.file_digest(local_file, "sha256").hexdigest()
        self.stdout.write(f"file {file['id']} stored ({file['size_bytes']} bytes)")
        self.stdout.write(f"server sha256: {file['sha256']}")
        self.stdout.write(f"local  sha256: {local}")
        if file["sha256"] != local or file["size_bytes"] != uploader.size:
            raise CommandError("sha256 mismatch: the stored file differs from the local file")
        self.stdout.write("OK")
