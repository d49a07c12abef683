"""``ProbeLaneWorker``: gunicorn's gthread worker with its own threads for the probes.

The gthread worker hands every connection to one pool of ``GUNICORN_THREADS`` threads,
first come first served. When API requests hold them all (each waiting out the database
connect timeout, streaming a slow upload), ``/health`` and ``/ready`` wait in the same
queue and the orchestrator restarts a process that is fine. This worker looks at the
bytes already received (``MSG_PEEK``, nothing consumed) before it chooses a pool: a
complete ``GET``/``HEAD`` of ``/health`` or ``/ready`` without a body goes to that probe's
own lane (``LANE_THREADS``), anything else to the usual pool. ``/health`` never
waits behind ``/ready`` either, which may take its whole budget when a dependency hangs.

A request is routed to a lane only when its request line and all its headers are in the
socket buffer, so a client that trickles bytes can hold a lane thread for no longer than
the probe takes to answer; anything incomplete, with a body, over TLS or already read
ahead by the parser takes the usual pool, as before. A fresh connection with nothing to
read yet waits in the poller, not in a thread.

Imported by gunicorn's master (``worker_class``): nothing from Django here.
"""

import socket
import time
from concurrent import futures

from gunicorn.workers import gthread

from portal.health.paths import HEALTH_PATH, PROBE_METHODS, READY_PATH

# /health answers from memory; /ready waits for its checks (portal.health.executor), so
# it gets as many threads as the checks have, and probes arriving together share a run.
LANE_THREADS = {HEALTH_PATH: 2, READY_PATH: 4}
# A probe's request line and headers fit in far less; a longer request is no probe.
PEEK_BYTES = 4096
HEADERS_END = b"\r\n\r\n"
BODY_HEADERS = (b"\r\ncontent-length:", b"\r\ntransfer-encoding:")


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
    """gthread, plus one small pool per probe path, chosen per request."""

    def init_process(self):
        self.lanes = {
            path: futures.ThreadPoolExecutor(threads, thread_name_prefix=f"lane{path}")
            for path, threads in LANE_THREADS.items()
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
        """Submit to a probe's lane or to the usual pool; wait in the poller for the bytes
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
        lane = self.lanes.get(probe_path(head))
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
