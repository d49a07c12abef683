"""``ProbeLaneWorker``: gunicorn's gthread worker with threads of their own for the probes
and for tus uploads, chosen by peeking at the received bytes (``MSG_PEEK``).

In one shared pool, requests waiting on a hung database or a slow client would hold every
thread, and the orchestrator would restart a process that is fine. Imported by gunicorn's
master: nothing from Django here.
"""

import socket
import time
from concurrent import futures

from gunicorn.workers import gthread

from portal.health.paths import HEALTH_PATH, PROBE_METHODS, READY_PATH

# /ready gets as many threads as its checks (portal.health.executor).
LANE_THREADS = {HEALTH_PATH: 2, READY_PATH: 4}
# tus requests with a body (PATCH; POST for creation-with-upload or a method override):
# one upload streaming per thread. Without a body they take the usual pool.
TUS_LANE = "tus"
TUS_PREFIX = "/api/v1/tus/"
TUS_METHODS = (b"PATCH", b"POST")
TUS_THREADS = 8
# A request line and headers fit in far less; a longer head takes the usual pool.
PEEK_BYTES = 4096
HEADERS_END = b"\r\n\r\n"
BODY_HEADERS = (b"\r\ncontent-length:", b"\r\ntransfer-encoding:")


def lane_for(head):
    """The lane for the complete request head at the start of ``head``: a probe path when it
    announces no body, ``TUS_LANE`` for a tus body, else None (the usual pool)."""
    end = head.find(HEADERS_END)
    if end < 0:
        return None
    request_line, _, headers = head[: end + 2].partition(b"\r\n")
    parts = request_line.split(b" ")
    if len(parts) != 3:
        return None
    method, target, version = parts
    path = target.split(b"?", 1)[0].decode("latin-1")
    if path in (HEALTH_PATH, READY_PATH) and method.decode("latin-1") in PROBE_METHODS:
        if any(marker in b"\r\n" + headers.lower() for marker in BODY_HEADERS):
            return None
        return path
    if method not in TUS_METHODS or not version.startswith(b"HTTP/1."):
        return None
    if not target.decode("latin-1").startswith(TUS_PREFIX) or not _has_body(headers):
        return None
    return TUS_LANE


def _has_body(headers):
    """Whether the header block announces a body: chunked, or a ``Content-Length`` not 0."""
    for line in headers.lower().split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name == b"transfer-encoding":
            return True
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
    return False


class ProbeLaneWorker(gthread.ThreadWorker):
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
        """Submit to a lane or the usual pool; wait in the poller when no byte has arrived."""
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
        """Whether the parser holds bytes of the next request (the socket's are not its start)."""
        return conn.parser is not None and bool(conn.parser.unreader.buf.getvalue())

    def _wait_for_request(self, conn):
        """As gunicorn does with a late connection (closed after ``keepalive`` seconds),
        without first holding a thread for ``DEFAULT_WORKER_DATA_TIMEOUT``."""
        conn.sock.setblocking(False)
        conn.timeout = time.monotonic() + self.cfg.keepalive
        self.pending_conns.append(conn)
        self.poller.register(
            conn.sock,
            gthread.selectors.EVENT_READ,
            gthread.partial(self.on_pending_socket_readable, conn),
        )
