"""Pins for the jobs area, fourth round (issue #31): what ``portal_upload`` puts on the wire,
seen by a recording server on loopback."""

import json

from tests.peers import LoopbackServer, read_head
from tests.upload_command import upload


class RecordsHeadersAndRefuses(LoopbackServer):
    """Records each request's head (lower-cased header names) and answers 403 in the
    portal's JSON error shape, so the command stops after its first call."""

    def __init__(self):
        super().__init__()
        self.heads = []

    def answer(self, conn):
        raw = read_head(conn)
        if not raw:
            return
        lines = raw.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
        self.heads.append(
            (
                lines[0],
                dict(
                    (k.strip().lower(), v.strip()) for k, v in (h.split(":", 1) for h in lines[1:])
                ),
            )
        )
        body = json.dumps({"error": {"code": "forbidden", "message": "no"}}).encode()
        conn.sendall(
            b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"


def test_the_session_request_asks_for_json_and_says_it_sends_json(upload_file):
    """A front that negotiates (a proxy's error pages, the health page) answers JSON only
    when asked: the command asks for ``application/json`` and labels its JSON body, with the
    token as a bearer credential."""
    with RecordsHeadersAndRefuses() as server:
        result = upload(upload_file, server.url)
    assert result.code == 1
    request_line, headers = server.heads[0]
    assert request_line == "POST /api/v1/uploads/sessions HTTP/1.1"
    assert headers["accept"] == "application/json"
    assert headers["content-type"] == "application/json"
    assert headers["authorization"] == "Bearer tok"


def test_a_missing_file_is_named_in_the_usage_error(tmp_path, monkeypatch):
    """The error starts with the path the operator typed, then why, so a typo is obvious."""
    monkeypatch.setenv("PORTAL_TOKEN", "tok")
    missing = tmp_path / "no-such.bin"
    result = upload(missing, "http://127.0.0.1:9/")
    assert result.code == 2
    assert f"CommandError: {missing}: not a readable, non-empty file\n" in result.err
