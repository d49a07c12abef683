"""An HTTP proxy on loopback in front of moto, to give the S3 storage the faults a real S3
or a network can: answers replaced, requests never forwarded, answers lost."""

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class S3Proxy:
    """Forwards every request to ``upstream``; ``answer(request, forward)`` decides what the
    client gets: by default moto's answer, unless ``spoil(request, status, payload)`` gives a
    ``(status, payload)`` in its place (counted in ``spoiled``). A subclass may answer without
    forwarding, or return None to close the connection unanswered."""

    def __init__(self, upstream, spoil=None):
        self.spoil = spoil or (lambda request, status, payload: None)
        self.spoiled = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler(urlsplit(upstream)))
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, request, forward):
        status, headers, payload = forward()
        spoiled = self.spoil(request, status, payload)
        if spoiled is None:
            return status, headers, payload
        self.spoiled += 1
        return spoiled[0], [], spoiled[1]

    def _handler(self, target):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # answers botocore's "Expect: 100-continue" at once

            def log_message(self, *args):
                pass

            def forward(self, body):
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "expect"}
                upstream.request(self.command, self.path, body, headers)
                answer = upstream.getresponse()
                try:
                    return answer.status, answer.getheaders(), answer.read()
                finally:
                    upstream.close()

            def handle_one(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answered = proxy.answer(self, lambda: self.forward(body))
                if answered is None:
                    self.close_connection = True
                    return
                status, headers, payload = answered
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = handle_one

        return Handler

    def close(self):
        self.server.shutdown()
        self.server.server_close()
