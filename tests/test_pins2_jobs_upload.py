"""Pins for the jobs area, second round (issue #31): ``portal_upload``'s requests, defaults
and progress, against the scripted portal of ``test_pins_jobs_upload.py`` on loopback."""

import json
import threading
import time
import types

import pytest

from tests.commands import usage_error
from tests.upload_command import FakePortal, upload


class RecordingPortal(FakePortal):
    """``FakePortal`` that also records each request's headers and how many PUTs were in
    flight at once (each PUT is held ``hold`` seconds)."""

    def __init__(self, *args, hold=0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.headers = []
        self.hold = hold
        self.in_flight = self.most_in_flight = 0
        self._count = threading.Lock()
        portal = self
        base = self._server.RequestHandlerClass

        class Recording(base):
            def handle_one(self):
                portal.headers.append((self.command, self.path, dict(self.headers)))
                base.handle_one(self)

            do_GET = do_POST = do_PUT = handle_one

        self._server.RequestHandlerClass = Recording

    def answer(self, method, path, body):
        if method == "PUT":
            with self._count:
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
            time.sleep(self.hold)
            with self._count:
                self.in_flight -= 1
        return super().answer(method, path, body)


def test_upload_sends_json_as_json_and_parts_as_octets(upload_file):
    data = upload_file.read_bytes()
    with RecordingPortal(len(data), 100, data=data) as portal:
        result = upload(upload_file, portal.url)
    assert result.code == 0, result.err
    types_sent = {(m, p.rsplit("/", 1)[-1] if m == "PUT" else p): h for m, p, h in portal.headers}
    assert types_sent[("POST", "/api/v1/uploads/sessions")]["Content-Type"] == "application/json"
    parts = [h for (m, _), h in types_sent.items() if m == "PUT"]
    assert len(parts) == 4
    assert {h["Content-Type"] for h in parts} == {"application/octet-stream"}
    assert all(h["Authorization"] == "Bearer tok" for h in types_sent.values())
    # A request without a body says nothing of a type.
    gets = [h for m, _, h in portal.headers if m == "GET"]
    assert gets and all("Content-Type" not in h for h in gets)


def test_upload_sends_two_parts_at_once_by_default(upload_file):
    data = upload_file.read_bytes()
    with RecordingPortal(len(data), 100, data=data, hold=0.15) as portal:
        result = upload(upload_file, portal.url)
    assert result.code == 0, result.err
    assert portal.most_in_flight == 2


def test_an_error_answer_that_is_not_json_is_shown_as_it_came(upload_file, slept):
    with FakePortal(305, 100) as portal:
        portal.script("POST", "sessions", (400, b"<html>proxy says no</html>"))
        result = upload(upload_file, portal.url)
    assert result.code == 1
    assert "creating the session failed: HTTP 400 not_json: <html>proxy says no</html>" in (
        result.err
    )


def test_the_progress_line_counts_the_parts_already_on_the_server(upload_file, terminal):
    stderr = terminal()
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, received=[1], data=data) as portal:
        result = upload(upload_file, portal.url, "--parallel", "1")
    assert result.code == 0, result.err
    shown = [line.split("parts")[0].strip() for line in stderr.getvalue().split("\r")[1:]]
    assert shown == ["2/4", "3/4", "4/4"]


def test_finalize_polls_back_off_one_doubling_at_a_time(upload_file, slept):
    data = upload_file.read_bytes()
    assembling = {"status": "finalizing", "assembly": {}}
    with FakePortal(len(data), 100, data=data) as portal:
        portal.script_assembly(*[assembling] * 4, failure="gave up")
        result = upload(upload_file, portal.url, "--finalize-wait", "60")
    assert result.code == 1 and "the session is failed: gave up" in result.err
    # Equal jitter around 1 s, 2 s, 4 s, 8 s, then 10 s at most: each in [delay / 2, delay).
    assert len(slept) == 5
    for attempt, delay in enumerate(slept):
        assert min(2**attempt, 10) / 2 <= delay < min(2**attempt, 10)


def test_finalize_waits_an_hour_by_default(upload_file, monkeypatch):
    """A fake clock for the command's waiting: each ``time.sleep`` moves it a hundred
    times as far (a few polls, not hundreds, fill the hour)."""
    from portal.management.commands import portal_upload

    clock = types.SimpleNamespace(now=1000.0, waited=0.0)

    def sleep(seconds):
        clock.now += 100 * seconds
        clock.waited += 100 * seconds

    fake_time = types.SimpleNamespace(monotonic=lambda: clock.now, sleep=sleep)
    monkeypatch.setattr(portal_upload, "time", fake_time)
    data = upload_file.read_bytes()
    assembling = {"status": "finalizing", "assembly": {}}
    with FakePortal(len(data), 100, data=data) as portal:
        portal.script_assembly(*[assembling] * 50)
        result = run_upload_without_short_defaults(upload_file, portal.url)
    assert result.code == 1
    assert "still being assembled after 3600 s" in result.err
    assert 3600 <= clock.waited < 3600 + 1000


def run_upload_without_short_defaults(path, url):
    from tests.commands import run_command

    return run_command("portal_upload", str(path), "--url", url, "--retries", "1")


@pytest.mark.parametrize("value", ["0", "x", "1.5"])
def test_a_chunk_size_that_is_no_positive_whole_number_is_a_usage_error(upload_file, value):
    code, err = usage_error(
        "portal_upload", str(upload_file), "--url", "http://p/", "--chunk-size", value
    )
    assert code == 2 and "--chunk-size" in err


def test_the_progress_line_counts_the_bytes_sent_exactly(tmp_path, monkeypatch, terminal):
    monkeypatch.setenv("PORTAL_TOKEN", "tok")
    stderr = terminal()
    path = tmp_path / "just-under.bin"
    path.write_bytes(b"y" * 52428)  # 0.049999 MiB: one byte more would show as 0.1
    data = path.read_bytes()
    with FakePortal(len(data), len(data), data=data) as portal:
        result = upload(path, portal.url)
    assert result.code == 0, result.err
    [line] = stderr.getvalue().split("\r")[1:]
    assert line.split("MiB")[0].split() == ["1/1", "parts", "0.0/0.0"]


def test_upload_declares_octets_unless_told_and_shows_an_unknown_total(upload_file, slept, capsys):
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, data=data) as portal:
        portal.script_assembly(
            {"status": "finalizing", "assembly": {"assembled_bytes": 100}}, failure="stop here"
        )
        result = upload(upload_file, portal.url)
    assert result.code == 1
    [created] = [json.loads(b) for m, p, b in portal.requests if p.endswith("/sessions")]
    assert created["content_type"] == "application/octet-stream"
    assert "  assembling: 100 of ? bytes\n" in capsys.readouterr().err


def test_upload_resumes_an_existing_session_and_names_a_failed_status_request(upload_file):
    data = upload_file.read_bytes()
    existing = {"id": "s1", "status": "in_progress", "total_parts": 4, "chunk_size_bytes": 100}
    with FakePortal(len(data), 100, received=[1, 2, 3, 4], data=data) as portal:
        portal.script("POST", "sessions", (200, existing))
        result = upload(upload_file, portal.url)
    assert result.code == 0, result.err
    assert "session s1 (existing)" in result.out and "uploaded 0 parts" in result.out
    with FakePortal(len(data), 100, data=data) as portal:
        portal.script("GET", "session", (404, {"error": {"code": "not_found", "message": "no"}}))
        result = upload(upload_file, portal.url)
    assert result.code == 1
    assert "asking for the session's status failed: HTTP 404 not_found: no" in result.err
