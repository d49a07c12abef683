"""``ProbeLaneWorker``: gunicorn's gthread worker with threads of their own for the probes
and for tus uploads.

In one shared pool, API requests waiting on a hung database or a slow client would hold
every thread, and the orchestrator would restart a process that is fine. The worker peeks
at the bytes received (``MSG_PEEK``) and sends a complete probe to its lane, a tus
``PATCH``/``POST`` to the tus lane (nginx streams those bodies), anything else to the
usual pool. Imported by gunicorn's master: nothing from Django here.
"""

import socket
import time
from concurrent import futures

from gunicorn.workers import gthread

from portal.health.paths import HEALTH_PATH, PROBE_METHODS, READY_PATH

# /health answers from memory; /ready waits for its checks (portal.health.executor), so
# it gets as many threads as the checks have, and probes arriving together share a run.
LANE_THREADS = {HEALTH_PATH: 2, READY_PATH: 4}
# tus requests with a body (PATCH; POST for creation-with-upload and for
# X-HTTP-Method-Override): one upload streaming per thread, at most this many per worker.
# Without a body they are short and take the usual pool, never waiting behind uploads.
TUS_LANE = "tus"
TUS_PREFIX = "/api/v1/tus/"
TUS_METHODS = (b"PATCH", b"POST")
TUS_THREADS = 8
# A request line and headers fit in far less; a longer head takes the usual pool.
PEEK_BYTES = 4096
HEADERS_END = b"\r\n\r\n"
BODY_HEADERS = (b"\r\ncontent-length:", b"\r\ntransfer-encoding:")


def lane_for(head):
    """The lane for the request ``head`` starts: a probe path, ``TUS_LANE``, or None (the
    usual pool)."""
    return probe_path(head) or tus_lane(head)


def tus_lane(head):
    """``TUS_LANE`` when ``head`` is a complete ``PATCH``/``POST`` head under ``TUS_PREFIX``
    announcing a body."""
    end = head.find(HEADERS_END)
    if end < 0:
        return None
    request_line, _, headers = head[: end + 2].partition(b"\r\n")
    parts = request_line.split(b" ")
    if len(parts) != 3 or parts[0] not in TUS_METHODS or not parts[2].startswith(b"HTTP/1."):
        return None
    if not parts[1].decode("latin-1").startswith(TUS_PREFIX) or not _has_body(headers):
        return None
    return TUS_LANE


def _has_body(headers):
    """Whether the header block (lines ending in CRLF) announces a body: chunked, or a
    ``Content-Length`` other than 0."""
    for line in headers.lower().split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name == b"transfer-encoding":
            return True
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
    return False


def probe_path(head):
    """The probe path ``head`` (bytes at the start of a request) asks for, or None.

    Only a complete request head without a body counts: ``GET /health HTTP/1.1`` (or a
    query string) followed by headers and the blank line.
    """
    end = head.find(HEADERS_END)
    if end < 0:
        return None
    request_line, _, headers = head[: end + 2].partition(b"\r\n")
    parts = request_line.split(b" ")
    if len(parts) != 3 or parts[0].decode("latin-1") not in PROBE_METHODS:
        return None
    path = parts[1].split(b"?", 1)[0].decode("latin-1")
    if path not in (HEALTH_PATH, READY_PATH):
        return None
    if any(marker in b"\r\n" + headers.lower() for marker in BODY_HEADERS):
        return None
    return path


class ProbeLaneWorker(gthread.ThreadWorker):
    """gthread, plus one small pool per probe path and one for tus bodies, chosen per
    request."""

    def init_process(self):
        self.lanes = {
            lane: futures.ThreadPoolExecutor(threads, thread_name_prefix=f"lane-{lane}")
            for lane, threads in {**LANE_THREADS, TUS_LANE: TUS_THREADS}.items()
        }
        super().init_process()

    def run(self):
        try:
            super().run()
        finally:
            self._shutdown_lanes()

    def handle_quit(self, sig, frame):
        self._shutdown_lanes()
        super().handle_quit(sig, frame)

    def _shutdown_lanes(self):
        for pool in self.lanes.values():
            pool.shutdown(wait=False)

    def enqueue_req(self, conn):
        """Submit to a lane or to the usual pool; wait in the poller for the bytes
        that decide, when none has arrived yet."""
        if self.cfg.is_ssl or conn.is_http2 or self._read_ahead(conn):
            super().enqueue_req(conn)
            return
        try:
            head = conn.sock.recv(PEEK_BYTES, socket.MSG_PEEK | getattr(socket, "MSG_DONTWAIT", 0))
        except BlockingIOError:
            self._wait_for_request(conn)
            return
        except OSError:
            head = b""  # the usual pool reads the error and closes the connection
        lane = self.lanes.get(lane_for(head))
        if lane is None:
            super().enqueue_req(conn)
            return
        conn.data_ready = True
        fs = lane.submit(self.handle, conn)
        fs.add_done_callback(lambda fut: self.method_queue.defer(self.finish_request, conn, fut))

    @staticmethod
    def _read_ahead(conn):
        """Whether the parser already holds bytes of the next request (the socket's are not
        where that request starts)."""
        return conn.parser is not None and bool(conn.parser.unreader.buf.getvalue())

    def _wait_for_request(self, conn):
        """As gunicorn does with a connection whose first bytes are late (it closes the
        connection after ``keepalive`` seconds), without first holding a thread for
        ``DEFAULT_WORKER_DATA_TIMEOUT``."""
        conn.sock.setblocking(False)
        conn.timeout = time.monotonic() + self.cfg.keepalive
        self.pending_conns.append(conn)
        self.poller.register(
            conn.sock,
            gthread.selectors.EVENT_READ,
            gthread.partial(self.on_pending_socket_readable, conn),
        )
