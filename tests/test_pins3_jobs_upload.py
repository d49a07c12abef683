"""Pins for the jobs area, third round (issue #31): what ``portal_upload`` shows while it
works, against the scripted portal of ``tests/upload_command.py`` on loopback."""

import re

from tests.upload_command import FakePortal, upload


def test_the_progress_line_shows_parts_mebibytes_and_the_rate(tmp_path, monkeypatch, terminal):
    """On a terminal the one self-overwriting line reads parts, MiB sent of the total and
    the rate, in that order and those units."""
    monkeypatch.setenv("PORTAL_TOKEN", "tok")
    stderr = terminal()
    path = tmp_path / "two.bin"
    path.write_bytes(b"z" * 300_000)
    data = path.read_bytes()
    with FakePortal(len(data), 200_000, data=data) as portal:
        result = upload(path, portal.url, "--parallel", "1")
    assert result.code == 0, result.err
    lines = stderr.getvalue().split("\r")[1:]
    assert len(lines) == 2
    assert re.fullmatch(r"  1/2 parts  0\.2/0\.3 MiB  \d+\.\d MiB/s ", lines[0]), lines
    assert re.fullmatch(r"  2/2 parts  0\.3/0\.3 MiB  \d+\.\d MiB/s \n", lines[1]), lines


def test_an_assembly_without_progress_yet_shows_zero_bytes(upload_file, slept, capsys):
    """A status that reports no assembled bytes yet shows 0 of the unknown total, not a
    made-up figure."""
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, data=data) as portal:
        portal.script_assembly({"status": "finalizing"}, failure="stop here")
        result = upload(upload_file, portal.url)
    assert result.code == 1
    assert "  assembling: 0 of ? bytes\n" in capsys.readouterr().err


class ReplayingPortal(FakePortal):
    """Answers every part 200, as the portal answers an identical replay of a stored part."""

    def answer(self, method, path, body):
        status, payload = super().answer(method, path, body)
        return (200 if method == "PUT" else status), payload


def test_a_part_answered_200_as_a_replay_counts_as_sent(upload_file):
    """A part whose earlier answer was lost is sent again and answered 200 (already stored,
    same bytes): that is success, not a failed upload."""
    data = upload_file.read_bytes()
    with ReplayingPortal(len(data), 100, data=data) as portal:
        result = upload(upload_file, portal.url)
    assert result.code == 0, result.err
    assert "uploaded 4 parts" in result.out and result.out.rstrip().endswith("OK")


def test_a_part_still_in_progress_after_every_retry_names_the_code(upload_file, slept):
    """When the retries run out on a part another request is still sending, the error
    says so (status and code), so the operator knows to wait, not to change the file."""
    data = upload_file.read_bytes()
    in_progress = (409, {"error": {"code": "part_in_progress", "message": "busy"}})
    with FakePortal(len(data), 100, data=data) as portal:
        portal.script("PUT", "part", in_progress, in_progress)
        result = upload(upload_file, portal.url, "--parallel", "1")
    assert result.code == 1
    assert (
        "PUT /api/v1/uploads/sessions/s1/parts/1: HTTP 409 part_in_progress "
        "(gave up after 2 tries)" in result.err
    ), result.err


def test_a_429_is_waited_out_and_retried(upload_file, slept):
    """429 (too many requests, or a quota that frees up) is worth another try after a
    back-off, like a 503: the upload goes on."""
    data = upload_file.read_bytes()
    busy = (429, {"error": {"code": "rate_limited", "message": "slow down"}})
    with FakePortal(len(data), 100, data=data) as portal:
        portal.script("POST", "sessions", busy)
        result = upload(upload_file, portal.url)
    assert result.code == 0, result.err
    assert len(slept) == 1
    assert [p for m, p, _ in portal.requests if m == "POST"][:2] == ["/api/v1/uploads/sessions"] * 2


def test_a_fresh_upload_says_nothing_of_resuming(upload_file):
    """The "resuming" line says parts were already there: a new session has none."""
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, data=data) as portal:
        result = upload(upload_file, portal.url)
    assert result.code == 0, result.err
    assert "resuming" not in result.out and "uploaded 4 parts" in result.out
