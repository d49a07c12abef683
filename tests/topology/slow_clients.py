"""Slow clients for the topology trial: connections that trickle a request and never end it.

Run as a process of its own (``python -m tests.topology.slow_clients``), so its hundreds
of sockets never compete with the measuring test for the interpreter lock:

- a **header trickler** sends a request line, then one header line a second, never the
  blank line that ends the headers (slowloris);
- a **body trickler** sends the complete headers of a part upload (valid token, real
  session, ``Content-Length`` of a whole part), then ``BODY_BYTES`` bytes a second.
- a **tus trickler** does the same with a tus ``PATCH`` (valid token, an upload of its
  own, ``Content-Length`` of the whole upload): nginx streams these to gunicorn as they
  arrive, where they hold threads of the tus lane.

Each connection comes from its own loopback address (127.66.0.0/16), as a botnet's
would, so per-address limits are not what stops them. A connection the server closes is
opened again on the next tick, so the count holds for the whole trial. Prints ``ready``
once every connection is open, and a JSON summary when the time is up.
"""

import argparse
import contextlib
import json
import os
import socket
import ssl
import sys
import time

BODY_BYTES = 16
CONNECT_TIMEOUT = 1.0
NETWORK = 66
NICENESS = 10


def address(index):
    return f"127.{NETWORK}.{index // 250}.{index % 250 + 1}"


class Trickler:
    def __init__(self, index, options, first, lines):
        self.index, self.options = index, options
        self.first, self.lines = first, lines
        self.sock = None
        self.sent = 0

    def open(self):
        raw = socket.create_connection(
            ("127.0.0.1", self.options.port), CONNECT_TIMEOUT, (address(self.index), 0)
        )
        raw.settimeout(CONNECT_TIMEOUT)
        if self.options.cafile:
            context = ssl.create_default_context(cafile=self.options.cafile)
            context.check_hostname = False
            raw = context.wrap_socket(raw, server_hostname=self.options.host)
        raw.sendall(self.first)
        self.sock, self.sent = raw, 0

    def tick(self):
        """Send the next piece; reopen a connection the server closed. True if reopened."""
        if self.sock is not None:
            try:
                self.sock.sendall(self.lines(self.sent))
                self.sent += 1
                return False
            except (OSError, ValueError):
                self.close()
        with contextlib.suppress(OSError):
            self.open()
        return True

    def close(self):
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None


def header_trickler(index, options):
    first = f"GET /api/v1/uploads/sessions HTTP/1.1\r\nHost: {options.host}\r\n".encode()
    return Trickler(index, options, first, lambda n: f"X-Trickle-{n}: {n}\r\n".encode())


def body_trickler(index, options, number):
    first = (
        f"PUT /api/v1/uploads/sessions/{options.session}/parts/{number} HTTP/1.1\r\n"
        f"Host: {options.host}\r\nAuthorization: Bearer {options.token}\r\n"
        # What nginx would send: without it gunicorn (Prod) would redirect at once
        # instead of reading the body. Through nginx, nginx sets its own.
        "X-Forwarded-Proto: https\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {options.part_size}\r\n\r\n"
    ).encode()
    return Trickler(index, options, first, lambda n: b"\0" * BODY_BYTES)


def tus_trickler(index, options, upload, length):
    first = (
        f"PATCH {upload} HTTP/1.1\r\nHost: {options.host}\r\n"
        f"Authorization: Bearer {options.token}\r\nX-Forwarded-Proto: https\r\n"
        "Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
        f"Content-Type: application/offset+octet-stream\r\nContent-Length: {length}\r\n\r\n"
    ).encode()
    return Trickler(index, options, first, lambda n: b"\0" * BODY_BYTES)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cafile", help="speak TLS, trusting this certificate")
    parser.add_argument("--host", default="portal.example.com")
    parser.add_argument("--headers", type=int, default=200)
    parser.add_argument("--bodies", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--token", default="")
    parser.add_argument("--session", default="")
    parser.add_argument("--part-size", type=int, default=256 * 1024)
    parser.add_argument("--tus-uploads", default="", help="comma-separated tus upload paths")
    parser.add_argument("--tus-length", type=int, default=1024 * 1024)
    return parser.parse_args(argv)


def main(argv=None):
    options = parse_args(argv)
    # The tricklers stand for clients on other machines: on the test host they yield the
    # CPU to the servers under test instead of competing with them for it.
    os.nice(NICENESS)
    tricklers = [header_trickler(i, options) for i in range(options.headers)]
    tricklers += [body_trickler(options.headers + i, options, i + 1) for i in range(options.bodies)]
    uploads = [path for path in options.tus_uploads.split(",") if path]
    first = options.headers + options.bodies
    tricklers += [
        tus_trickler(first + i, options, upload, options.tus_length)
        for i, upload in enumerate(uploads)
    ]
    for trickler in tricklers:
        trickler.tick()
    opened = sum(trickler.sock is not None for trickler in tricklers)
    print("ready", flush=True)
    reopened = 0
    deadline = time.monotonic() + options.seconds
    while (now := time.monotonic()) < deadline:
        reopened += sum(trickler.tick() for trickler in tricklers)
        time.sleep(max(0.0, min(1.0 - (time.monotonic() - now), deadline - time.monotonic())))
    for trickler in tricklers:
        trickler.close()
    print(json.dumps({"opened": opened, "reopened": reopened}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
