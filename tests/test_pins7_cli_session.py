"""Pins for the upload client, seventh round (issue #31): what ``portal_upload`` asks the
portal for, how it follows a session's state and an assembly, and what it draws and
prints, against the scripted portal of ``tests/upload_command.py`` on loopback."""

import hashlib
import json
import re
import threading
import time
import types

from tests.upload_command import FakePortal, upload


def created(portal):
    [body] = [json.loads(b) for m, p, b in portal.requests if p.endswith("/sessions")]
    return body


def test_the_session_request_carries_the_files_name_size_type_key_and_chunk(upload_file):
    """The create request describes the file exactly, with the operator's content type and
    part size, and the key derived from the file when none is given (a rerun resumes)."""
    from portal.management.commands.portal_upload import derived_idempotency_key

    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, data=data) as portal:
        result = upload(
            upload_file, portal.url, "--chunk-size", "100", "--content-type", "text/csv"
        )
    assert result.code == 0, result.err
    assert created(portal) == {
        "filename": "data.bin",
        "content_type": "text/csv",
        "size_bytes": 305,
        "idempotency_key": derived_idempotency_key(str(upload_file)),
        "chunk_size_bytes": 100,
    }


def test_without_chunk_size_the_request_leaves_the_part_size_to_the_server(upload_file):
    """No ``--chunk-size``: the request names none, so the server's default applies."""
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, data=data) as portal:
        result = upload(upload_file, portal.url)
    assert result.code == 0, result.err
    assert "chunk_size_bytes" not in created(portal)


def test_a_session_already_being_assembled_is_waited_for_without_sending_parts(upload_file):
    """A rerun while the server assembles the file (the first run was cut during finalize)
    sends no part: it says so and waits for the file through finalize."""
    data = upload_file.read_bytes()
    finalizing = {"id": "s1", "status": "finalizing", "total_parts": 4, "chunk_size_bytes": 100}
    with FakePortal(len(data), 100, received=[1, 2, 3, 4], data=data) as portal:
        portal.script("POST", "sessions", (200, finalizing))
        result = upload(upload_file, portal.url)
    assert result.code == 0, result.err
    assert "session s1 is being assembled; waiting for it" in result.out
    assert [(m, p.rsplit("/", 1)[1]) for m, p, _ in portal.requests] == [
        ("POST", "sessions"),
        ("POST", "finalize"),
    ]


def test_an_assembly_that_completes_while_polled_gives_the_polled_file(upload_file, slept):
    """Finalize answered 202, a later status says complete: the file that status names is
    the stored one (compared with the local file), and the upload succeeds."""
    data = upload_file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    stored = {"id": "f2", "size_bytes": 305, "sha256": digest}
    with FakePortal(len(data), 100, data=data) as portal:
        portal.script_assembly({"status": "finalizing"}, {"status": "complete", "file": stored})
        result = upload(upload_file, portal.url, "--finalize-wait", "60")
    assert result.code == 0, result.err
    assert "file f2 stored (305 bytes)" in result.out and result.out.endswith("OK\n")
    assert len(slept) == 2


def test_a_session_that_ends_without_a_reason_names_its_status(upload_file, slept):
    """A session that stops finalizing with no failure reason (aborted by its owner) still
    ends the wait with its status as the reason, not "None"."""
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, data=data) as portal:
        portal.script_assembly({"status": "aborted"})
        result = upload(upload_file, portal.url)
    assert result.code == 1
    assert "finalize failed: the session is aborted: aborted\n" in result.err


def fake_clock(monkeypatch, step):
    """``portal_upload``'s clock stands still except each sleep, which moves it ``step`` s."""
    from portal.management.commands import portal_upload

    clock = types.SimpleNamespace(now=1000.0)

    def sleep(seconds):
        clock.now += step

    monkeypatch.setattr(
        portal_upload, "time", types.SimpleNamespace(monotonic=lambda: clock.now, sleep=sleep)
    )


def polls(portal):
    return sum(1 for m, p, _ in portal.requests if m == "GET") - 1  # the first: received parts


def test_the_assembly_wait_ends_exactly_at_finalize_wait(upload_file, monkeypatch):
    """``--finalize-wait 5``: a poll 5 s in is the last (the wait is over, not one poll
    more); with 5.5 s the wait goes on for a second poll."""
    fake_clock(monkeypatch, step=5.0)
    data = upload_file.read_bytes()
    finalizing = {"status": "finalizing"}
    for wait, expected in (("5", 1), ("5.5", 2)):
        with FakePortal(len(data), 100, data=data) as portal:
            portal.script_assembly(*[finalizing] * 5)
            result = upload(upload_file, portal.url, "--finalize-wait", wait)
        assert result.code == 1
        assert f"still being assembled after {wait} s" in result.err
        assert polls(portal) == expected, wait


def test_without_a_terminal_no_progress_is_drawn(upload_file, capsys):
    """Cron and scripts read stderr as the errors: the progress line is for a terminal
    only, so a redirected run's stderr stays empty on success."""
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, data=data) as portal:
        result = upload(upload_file, portal.url)
    assert result.code == 0, result.err
    assert capsys.readouterr().err == ""


def test_a_resumed_uploads_progress_counts_the_bytes_on_the_server_and_rates_only_new_ones(
    tmp_path, monkeypatch, terminal
):
    """Resuming with the short last part already there: the MiB shown include its real size
    (0.5, not a full part), and the rate counts only what this run sent."""
    from portal.management.commands import portal_upload

    monkeypatch.setenv("PORTAL_TOKEN", "tok")
    clock = types.SimpleNamespace(now=0.0)

    def monotonic():
        clock.now += 1.0  # each reading is one second after the last
        return clock.now

    monkeypatch.setattr(
        portal_upload, "time", types.SimpleNamespace(monotonic=monotonic, sleep=lambda s: None)
    )
    stderr = terminal()
    mib = 2**20
    path = tmp_path / "two-and-a-half.bin"
    path.write_bytes(bytes(range(256)) * (5 * mib // 2 // 256))
    data = path.read_bytes()
    with FakePortal(len(data), mib, received=[3], data=data) as portal:
        result = upload(path, portal.url, "--parallel", "1")
    assert result.code == 0, result.err
    lines = [re.sub(r"\s+", " ", line).strip() for line in stderr.getvalue().split("\r")[1:]]
    assert lines == [
        "2/3 parts 1.5/2.5 MiB 1.0 MiB/s",
        "3/3 parts 2.5/2.5 MiB 1.0 MiB/s",
    ]


class OtherBytes(FakePortal):
    """Stores the file at the right size but reports another file's digest."""

    def file(self):
        return {**super().file(), "sha256": hashlib.sha256(b"other").hexdigest()}


def test_a_stored_file_of_the_right_size_but_another_digest_is_refused(upload_file):
    """The size alone proves nothing: a digest that differs from the local file's fails the
    upload (exit 1) and "OK" is never printed."""
    data = upload_file.read_bytes()
    with OtherBytes(len(data), 100, data=data) as portal:
        result = upload(upload_file, portal.url)
    assert result.code == 1
    assert "sha256 mismatch: the stored file differs from the local file" in result.err
    assert "file f1 stored (305 bytes)" in result.out and "OK" not in result.out


def test_the_stored_line_shows_the_servers_size_not_the_local_one(upload_file):
    """The report is what the server holds: a stored size that differs from the local file
    shows as the server's figure, next to the refusal."""
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, data=data) as portal:
        portal.file_size = 306
        result = upload(upload_file, portal.url)
    assert result.code == 1
    assert "file f1 stored (306 bytes)" in result.out


def test_a_session_still_in_init_gets_its_parts_sent(upload_file):
    """``init`` (created, no part yet) is as open as ``in_progress``: the client sends the
    parts instead of calling the session unusable."""
    data = upload_file.read_bytes()
    fresh = {"id": "s1", "status": "init", "total_parts": 4, "chunk_size_bytes": 100}
    with FakePortal(len(data), 100, data=data) as portal:
        portal.script("POST", "sessions", (201, fresh))
        result = upload(upload_file, portal.url)
    assert result.code == 0, result.err
    assert sorted(n for n, _ in portal.puts()) == ["1", "2", "3", "4"]


class HoldingPortal(FakePortal):
    """Holds each PUT ``hold`` seconds and records the most PUTs in flight at once."""

    def __init__(self, *args, hold, **kwargs):
        super().__init__(*args, **kwargs)
        self.hold, self.in_flight, self.most = hold, 0, 0
        self._count = threading.Lock()

    def answer(self, method, path, body):
        if method == "PUT":
            with self._count:
                self.in_flight += 1
                self.most = max(self.most, self.in_flight)
            time.sleep(self.hold)
            with self._count:
                self.in_flight -= 1
        return super().answer(method, path, body)


def test_parallel_sets_how_many_parts_are_in_flight(upload_file):
    """``--parallel 3`` sends three parts at once and ``--parallel 1`` one at a time: the
    option, not a fixed pool, sets the load on the portal."""
    data = upload_file.read_bytes()
    for parallel in (3, 1):
        with HoldingPortal(len(data), 100, data=data, hold=0.5) as portal:
            result = upload(upload_file, portal.url, "--parallel", str(parallel))
        assert result.code == 0, result.err
        assert portal.most == parallel
