"""Pins for the jobs area (issue #31): ``portal_upload`` against a scripted portal on
loopback (resume, retries, budgets, session states), in this process."""

import json
import os

import pytest

from tests.upload_command import FakePortal, upload


def test_upload_resumes_sending_only_the_missing_parts_from_their_offsets(upload_file):
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, received=[1, 3], data=data) as portal:
        result = upload(upload_file, portal.url)
    assert result.code == 0, result.err
    assert sorted(portal.puts()) == [("2", data[100:200]), ("4", data[300:])]
    assert "resuming: 2 of 4 parts already on the server" in result.out
    assert "uploaded 2 parts" in result.out and result.out.endswith("OK\n")


def test_upload_retries_a_503_with_backoff_until_its_retries_run_out(upload_file, slept):
    data = upload_file.read_bytes()
    busy = (503, {"error": {"code": "unavailable"}})
    with FakePortal(len(data), 100, data=data) as portal:
        portal.script("PUT", "part", busy, busy)
        result = upload(upload_file, portal.url, "--retries", "2", "--parallel", "1")
    assert result.code == 0, result.err
    assert [n for n, _ in portal.puts()] == ["1", "1", "1", "2", "3", "4"]
    assert 0.25 <= slept[0] <= 0.5 and 0.5 <= slept[1] <= 1.0
    with FakePortal(len(data), 100, data=data) as portal:
        portal.script("PUT", "part", busy, busy)
        result = upload(upload_file, portal.url, "--retries", "1", "--parallel", "1")
    assert result.code == 1
    assert "PUT /api/v1/uploads/sessions/s1/parts/1: HTTP 503 (gave up after 2 tries)" in result.err


def test_upload_does_not_retry_a_4xx_and_names_the_step(upload_file, slept):
    with FakePortal(305, 100) as portal:
        portal.script("POST", "sessions", (400, {"error": {"code": "bad", "message": "no"}}))
        result = upload(upload_file, portal.url)
    assert result.code == 1 and slept == []
    assert "creating the session failed: HTTP 400 bad: no" in result.err
    assert len(portal.requests) == 1


def test_upload_a_non_json_2xx_is_not_the_portal(upload_file):
    with FakePortal(305, 100) as portal:
        portal.script("POST", "sessions", (200, b"<html>hi</html>"))
        result = upload(upload_file, portal.url)
    assert result.code == 1
    assert "HTTP 200 but the answer is not the portal's JSON" in result.err


@pytest.mark.parametrize("path", ["", "/", "/api/v1", "/api/v1/"])
def test_upload_adds_the_api_prefix_once(upload_file, path):
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, data=data) as portal:
        result = upload(upload_file, portal.url + path)
    assert result.code == 0, result.err
    assert all(p.startswith("/api/v1/uploads/") for _, p, _ in portal.requests)


def test_upload_a_409_part_means_the_file_changed(upload_file):
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, data=data) as portal:
        portal.script("PUT", "part", (409, {"error": {"code": "part_conflict", "message": "x"}}))
        result = upload(upload_file, portal.url, "--parallel", "1")
    assert result.code == 1
    assert "part 1 failed: HTTP 409 part_conflict: x; the file changed" in result.err


def test_upload_a_part_in_progress_is_retried(upload_file, slept):
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, data=data) as portal:
        portal.script("PUT", "part", (409, {"error": {"code": "part_in_progress"}}))
        result = upload(upload_file, portal.url, "--parallel", "1")
    assert result.code == 0, result.err
    assert len(slept) == 1


def test_upload_polls_an_assembly_and_stops_when_it_failed(upload_file, slept):
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, data=data) as portal:
        portal.script_assembly(
            {"status": "finalizing", "assembly": {"assembled_bytes": 5, "total_bytes": 9}},
            failure="disk full",
        )
        result = upload(upload_file, portal.url, "--finalize-wait", "2")
    assert result.code == 1
    assert "finalize failed: the session is failed: disk full" in result.err
    assert len(slept) == 2


def test_upload_refuses_a_stored_file_of_another_size(upload_file):
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, data=data) as portal:
        portal.file_size = len(data) + 1
        result = upload(upload_file, portal.url)
    assert result.code == 1
    assert "sha256 mismatch" in result.err


def test_upload_refuses_an_empty_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_TOKEN", "tok")
    (tmp_path / "empty").write_bytes(b"")
    result = upload(tmp_path / "empty", "http://127.0.0.1:9/")
    assert result.code == 2 and "not a readable, non-empty file" in result.err


def test_upload_gives_a_part_a_second_more_per_64_kib(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_TOKEN", "tok")
    path = tmp_path / "two-blocks.bin"
    data = os.urandom(2 * 64 * 1024)
    path.write_bytes(data)
    with FakePortal(len(data), len(data), data=data) as portal:
        portal.put_delay = 1.0  # within 0.5 s + 2 s for the part's 128 KiB
        result = upload(path, portal.url, "--timeout", "0.5", "--retries", "0")
    assert result.code == 0, result.err


def test_upload_a_complete_session_is_not_sent_again(upload_file):
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, received=[1, 2, 3, 4], data=data) as portal:
        done = {"id": "s1", "status": "complete", "total_parts": 4, "chunk_size_bytes": 100}
        portal.script("POST", "sessions", (200, done))
        result = upload(upload_file, portal.url)
    assert result.code == 0, result.err
    assert "session s1 (existing): 4 parts of 100 bytes" in result.out
    assert "session s1 is already complete" in result.out
    assert [m for m, _, _ in portal.requests] == ["POST", "GET"]


def test_upload_a_failed_session_needs_another_key(upload_file):
    with FakePortal(305, 100) as portal:
        failed = {"id": "s1", "status": "failed", "total_parts": 4, "chunk_size_bytes": 100}
        portal.script("POST", "sessions", (200, failed))
        result = upload(upload_file, portal.url)
    assert result.code == 1
    assert "session s1 is failed; start a new one with another --idempotency-key" in result.err


def test_upload_a_new_session_says_new(upload_file):
    data = upload_file.read_bytes()
    with FakePortal(len(data), 100, data=data) as portal:
        result = upload(upload_file, portal.url, "--idempotency-key", "k1")
    assert "session s1 (new): 4 parts of 100 bytes" in result.out
    [(_, _, body)] = [r for r in portal.requests if r[0] == "POST" and r[1].endswith("sessions")]
    assert json.loads(body)["idempotency_key"] == "k1"


def test_the_derived_idempotency_key_follows_size_and_mtime(upload_file):
    from portal.management.commands.portal_upload import derived_idempotency_key

    first = derived_idempotency_key(upload_file)
    assert first.startswith("portal-upload-") and len(first) == len("portal-upload-") + 40
    assert derived_idempotency_key(upload_file) == first
    stat = upload_file.stat()
    os.utime(upload_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1000))
    touched = derived_idempotency_key(upload_file)
    assert touched != first
    upload_file.write_bytes(upload_file.read_bytes() + b"x")
    os.utime(upload_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1000))
    assert derived_idempotency_key(upload_file) not in (first, touched)
