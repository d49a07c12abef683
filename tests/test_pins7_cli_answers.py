"""Pins for the upload client, seventh round (issue #31): how ``portal_upload``'s API client
reads the portal's answers (retried statuses, non-JSON and empty bodies, error texts, the
per-request deadline, the back-off cap, its keep-alive connections), against the scripted
portal of ``tests/upload_command.py`` on loopback."""

import os

import pytest

from tests.peers import BadRequestServer, LoopbackServer, read_head
from tests.upload_command import FakePortal, upload


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_each_retryable_status_is_waited_out_and_retried(upload_file, slept, status):
    """A timeout, a rate limit or any gateway/server error (proxy restarts, a deploy) is
    passing: one back-off and the same request again, and the upload finishes."""
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, data=data) as portal:
        portal.script("POST", "sessions", (status, {"error": {"code": "busy"}}))
        result = upload(upload_file, portal.url)
    assert result.code == 0, result.err
    assert len(slept) == 1
    creates = [p for m, p, _ in portal.requests if m == "POST" and p.endswith("/sessions")]
    assert len(creates) == 2


class Garbling(LoopbackServer):
    """Answers every request with bytes that are no HTTP status line."""

    def answer(self, conn):
        if read_head(conn):
            conn.sendall(b"garbage\r\n\r\n")


def test_an_answer_that_is_no_http_is_retried_then_named(upload_file, slept):
    """A garbled answer (a proxy cut off, a wrong protocol) is a connection failure like any
    other: retried, then one clear line naming it, never a traceback."""
    with Garbling() as server:
        result = upload(upload_file, f"http://127.0.0.1:{server.port}", "--retries", "1")
    assert result.code == 1
    assert "POST /api/v1/uploads/sessions: connection failed: BadStatusLine" in result.err
    assert "(gave up after 2 tries)" in result.err
    assert server.connections == 2 and len(slept) == 1


class EmptyBodies(FakePortal):
    """Stores each part but answers it ``201`` with no body at all."""

    def answer(self, method, path, body):
        status, payload = super().answer(method, path, body)
        return (status, b"") if method == "PUT" else (status, payload)


def test_a_part_answered_2xx_with_an_empty_body_counts_as_sent(upload_file):
    """An empty success body (a front that strips it) is the portal's "nothing to add",
    not a foreign server's page: the part counts and the upload finishes."""
    data = upload_file.read_bytes()
    with EmptyBodies(len(data), 100, data=data) as portal:
        result = upload(upload_file, portal.url)
    assert result.code == 0, result.err
    assert "uploaded 4 parts" in result.out and result.out.endswith("OK\n")


@pytest.mark.parametrize("status", [200, 400])
def test_a_long_non_json_answer_is_quoted_to_its_first_200_characters(upload_file, status):
    """A foreign server's page is shown only as its first 200 characters: enough to see
    whose it is, never a whole HTML page on the operator's terminal."""
    page = b"A" * 200 + b"B" * 300
    with FakePortal(305, 100) as portal:
        portal.script("POST", "sessions", (status, page))
        result = upload(upload_file, portal.url)
    assert result.code == 1
    assert "A" * 200 in result.err and "B" not in result.err


def test_a_non_json_300_is_an_error_answer_not_a_foreign_success(upload_file):
    """Only a 2xx that is not JSON means "this is not the portal"; a 3xx (a redirect page)
    is an error answer shown with its status and text."""
    with FakePortal(305, 100) as portal:
        portal.script("POST", "sessions", (300, b"<html>moved</html>"))
        result = upload(upload_file, portal.url)
    assert result.code == 1
    assert "creating the session failed: HTTP 300 not_json: <html>moved</html>" in result.err
    assert "is --url the portal's address?" not in result.err


def test_an_error_without_a_message_shows_the_whole_answer(upload_file):
    """An error answer that has a code but no message still says something: the body it
    came with, so the operator has more than an empty text."""
    with FakePortal(305, 100) as portal:
        portal.script("POST", "sessions", (400, {"error": {"code": "bad"}, "hint": "x"}))
        result = upload(upload_file, portal.url)
    assert result.code == 1
    expected = "creating the session failed: HTTP 400 bad: {'error': {'code': 'bad'}, 'hint': 'x'}"
    assert expected in result.err


def test_a_part_gets_the_timeout_plus_a_second_per_64_kib_and_no_more(tmp_path, monkeypatch):
    """A 64 KiB part may take ``--timeout`` + 1 s (3 s here), not a second more or less:
    the error names that deadline, the one the client waited for."""
    monkeypatch.setenv("PORTAL_TOKEN", "tok")
    path = tmp_path / "one-block.bin"
    data = os.urandom(64 * 1024)
    path.write_bytes(data)
    with FakePortal(len(data), len(data), data=data) as portal:
        portal.put_delay = 4.5
        result = upload(path, portal.url, "--timeout", "2", "--retries", "0")
    assert result.code == 1
    assert f"127.0.0.1:{portal.url.rsplit(':', 1)[1]} did not answer within 3 s" in result.err


def test_the_back_off_between_retries_stops_growing_at_30_seconds(upload_file, slept):
    """Retries double their wait from 0.5 s, but an outage never makes the client wait more
    than 30 s (15-30 s with jitter) between two tries."""
    data = upload_file.read_bytes()
    busy = (503, {"error": {"code": "busy"}})
    with FakePortal(len(data), 100, data=data) as portal:
        portal.script("POST", "sessions", *[busy] * 8)
        result = upload(upload_file, portal.url, "--retries", "8")
    assert result.code == 0, result.err
    assert len(slept) == 8
    assert 8 <= slept[5] < 16  # 0.5 * 2**5 = 16, below the cap
    assert 15 <= slept[6] < 30 and 15 <= slept[7] < 30  # 32 and 64, capped


class CountingPortal(FakePortal):
    """``FakePortal`` recording the client port each request came from."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ports = []
        portal = self
        base = self._server.RequestHandlerClass

        class Counting(base):
            def handle_one(self):
                portal.ports.append((self.command, self.client_address[1]))
                base.handle_one(self)

            do_GET = do_POST = do_PUT = handle_one

        self._server.RequestHandlerClass = Counting


def test_each_thread_keeps_one_connection_for_all_its_requests(upload_file):
    """Keep-alive: the main thread's calls share one connection and the part sender its
    own, instead of a new TCP (and TLS) handshake per request."""
    data = upload_file.read_bytes()
    with CountingPortal(len(data), 100, data=data) as portal:
        result = upload(upload_file, portal.url, "--parallel", "1")
    assert result.code == 0, result.err
    puts = {port for method, port in portal.ports if method == "PUT"}
    others = {port for method, port in portal.ports if method != "PUT"}
    assert len(portal.ports) == 7
    assert len(puts) == 1 and len(others) == 1 and puts != others


def test_the_derived_key_is_the_same_through_a_relative_path_or_a_link(
    upload_file, tmp_path, monkeypatch
):
    """A rerun from another directory, or through a symlink, is the same file: it must find
    the same session (resume), not start the upload over."""
    from portal.management.commands.portal_upload import derived_idempotency_key

    absolute = derived_idempotency_key(str(upload_file))
    monkeypatch.chdir(tmp_path)
    link = tmp_path / "link.bin"
    link.symlink_to(upload_file)
    assert derived_idempotency_key("data.bin") == absolute
    assert derived_idempotency_key(str(link)) == absolute


def test_the_back_off_stays_at_its_cap_after_any_number_of_failures():
    """An outbox event or a client past a thousand failures still waits its cap (half fixed,
    half jitter), not an overflow from doubling past what a float holds."""
    from portal.httpclient import backoff_delay

    assert backoff_delay(10_000, base=0.5, cap=30.0, rand=lambda: 0.0) == 15.0
    assert backoff_delay(10_000, base=0.5, cap=30.0, rand=lambda: 1.0) == 30.0


@pytest.mark.parametrize(
    "answer, shown",
    [
        ({"error": {"message": "no"}}, "HTTP 400 : no"),
        ({"detail": "x"}, "HTTP 400 : {'detail': 'x'}"),
        ({"error": "Not Found"}, "HTTP 400 : {'error': 'Not Found'}"),
        ({"error": None}, "HTTP 400 : {'error': None}"),
    ],
)
def test_an_error_without_a_code_or_an_error_object_is_still_one_line(upload_file, answer, shown):
    """An error answer lacking the code, or the ``error`` object altogether (a framework's
    own 400), or whose ``error`` is no object (a proxy's), is shown as it came: no "None",
    no traceback."""
    with FakePortal(305, 100) as portal:
        portal.script("POST", "sessions", (400, answer))
        result = upload(upload_file, portal.url)
    assert result.code == 1
    assert f"creating the session failed: {shown}\n" in result.err


def test_a_tls_handshake_failure_is_final_and_not_retried(upload_file, slept):
    """https at a plain-HTTP port cannot succeed on a retry: one connection, no back-off,
    and the line names the protocol mismatch."""
    with BadRequestServer() as plain:
        result = upload(upload_file, f"https://127.0.0.1:{plain.port}", "--retries", "3")
    assert result.code == 1
    assert f"TLS handshake with 127.0.0.1:{plain.port} failed" in result.err
    assert plain.connections == 1 and slept == []


def test_a_non_json_answer_in_another_encoding_is_quoted_not_a_traceback(upload_file):
    """A foreign server's Latin-1 page is still quoted (undecodable bytes replaced): the
    operator sees whose answer it was, not a ``UnicodeDecodeError``."""
    with FakePortal(305, 100) as portal:
        portal.script("POST", "sessions", (400, b"caf\xe9 proxy"))
        result = upload(upload_file, portal.url)
    assert result.code == 1
    assert "creating the session failed: HTTP 400 not_json: caf\ufffd proxy" in result.err
