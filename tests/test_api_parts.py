"""Part upload: exact sizes, replays, conflicts, closed sessions, concurrency."""

import threading

import pytest
import time_machine
from django.db import connection
from django.test import Client

from portal import storage
from portal.models import UploadPart, UploadSession
from tests import objects
from tests.api_helpers import Api, error_code, make_token, sha256


@pytest.fixture
def api(client, user, portal_storage):
    return Api(client, make_token(user))


def temp_keys():
    return sorted(item.key for item in storage.list_temp())


def test_part_is_stored_counted_and_moves_the_session_on(api):
    session = api.start(b"a" * 10 + b"b" * 10 + b"c" * 5, 10)
    response = api.put(session["id"], 2, b"b" * 10)
    assert response.status_code == 201
    body = response.json()
    assert body["sha256"] == sha256(b"b" * 10)
    assert (body["part_number"], body["size_bytes"], body["completed_parts"]) == (2, 10, 1)
    row = UploadSession.objects.get()
    assert (row.status, row.completed_parts, row.bytes_received) == ("in_progress", 1, 10)
    part = UploadPart.objects.get()
    assert objects.part_bytes(part) == b"b" * 10
    assert temp_keys() == [part.temp_key]
    assert api.put(session["id"], 3, b"c" * 5).status_code == 201
    assert UploadSession.objects.get().bytes_received == 15


def test_a_part_costs_six_lean_statements(api, django_assert_max_num_queries):
    """The token, the session, its range, then one transaction: insert, count (which locks
    the session), one read of it. Compiling queries, in proportion to the columns they
    select, is most of a small part's cost (docs/upload-performance.md): no query on this
    path reads the file's row or session columns the path does not use."""
    session = api.start(b"x" * 30, 10)
    assert api.put(session["id"], 1, b"x" * 10).status_code == 201

    with django_assert_max_num_queries(8) as queries:  # and SQLite's BEGIN, COMMIT
        assert api.put(session["id"], 2, b"x" * 10).status_code == 201

    sql = " ".join(query["sql"] for query in queries.captured_queries)
    assert "portal_ingestfile" not in sql and "failure_reason" not in sql
    assert "ORDER BY" not in sql


def test_every_part_extends_expires_at(api, settings):
    settings.PORTAL_SESSION_TTL_HOURS = 1
    with time_machine.travel("2030-01-01 10:00:00Z", tick=False):
        session = api.start(b"x" * 30, 10)
    with time_machine.travel("2030-01-01 10:50:00Z", tick=False):
        response = api.put(session["id"], 1, b"x" * 10)
        assert response.json()["expires_at"].startswith("2030-01-01T11:50:00")
    with time_machine.travel("2030-01-01 11:40:00Z", tick=False):
        assert api.put(session["id"], 2, b"x" * 10).status_code == 201
    assert UploadSession.objects.get().expires_at.isoformat().startswith("2030-01-01T12:40:00")


def test_identical_replay_is_200_and_counts_nothing(api):
    session = api.start(b"x" * 20, 10)
    assert api.put(session["id"], 1, b"x" * 10).status_code == 201
    keys = temp_keys()
    replay = api.put(session["id"], 1, b"x" * 10)
    assert replay.status_code == 200
    assert replay.json()["sha256"] == sha256(b"x" * 10)
    row = UploadSession.objects.get()
    assert (row.completed_parts, row.bytes_received) == (1, 10)
    assert temp_keys() == keys


def test_a_replay_longer_than_one_read_is_hashed_to_its_end(api, settings):
    settings.PORTAL_CHUNK_SIZE_MAX = 4 * 1024 * 1024
    part = bytes(range(256)) * (3 * 4096)  # 3 MiB: three reads of a replay
    session = api.start(part, len(part))
    assert api.put(session["id"], 1, part).status_code == 201
    replay = api.put(session["id"], 1, part)
    assert (replay.status_code, replay.json()["sha256"]) == (200, sha256(part))
    changed = api.put(session["id"], 1, part[:-1] + b"!")  # differs in its last read only
    assert (changed.status_code, error_code(changed)) == (409, "part_conflict")


def test_different_bytes_for_a_stored_part_is_409_and_keeps_the_first(api):
    session = api.start(b"x" * 20, 10)
    api.put(session["id"], 1, b"x" * 10)
    keys = temp_keys()
    response = api.put(session["id"], 1, b"y" * 10)
    assert (response.status_code, error_code(response)) == (409, "part_conflict")
    part = UploadPart.objects.get()
    assert part.sha256 == sha256(b"x" * 10)
    assert objects.part_bytes(part) == b"x" * 10
    assert temp_keys() == keys
    assert UploadSession.objects.get().completed_parts == 1


def test_part_sizes_are_exact(api):
    session = api.start(b"x" * 25, 10)
    sid = session["id"]
    cases = [
        (1, b"x" * 9, 400, "part_size_mismatch"),
        (1, b"x" * 11, 413, "part_too_large"),
        (3, b"x" * 10, 413, "part_too_large"),
        (3, b"x" * 4, 400, "part_size_mismatch"),
        (0, b"x", 400, "invalid_part_number"),
        (4, b"x" * 5, 400, "invalid_part_number"),
    ]
    for number, body, status, code in cases:
        response = api.put(sid, number, body)
        assert (response.status_code, error_code(response)) == (status, code), number
    assert api.put(sid, 3, b"x" * 5).status_code == 201
    assert UploadPart.objects.count() == 1
    assert len(temp_keys()) == 1


def test_missing_or_lying_content_length_is_refused_before_reading(api):
    session = api.start(b"x" * 20, 10)
    missing = api.put(session["id"], 1, b"x" * 10, CONTENT_LENGTH="")
    assert (missing.status_code, error_code(missing)) == (411, "length_required")
    bogus = api.put(session["id"], 1, b"x" * 10, CONTENT_LENGTH="ten")
    assert (bogus.status_code, error_code(bogus)) == (400, "invalid_content_length")
    short = api.put(session["id"], 1, b"x" * 10, CONTENT_LENGTH="9")
    assert (short.status_code, error_code(short)) == (400, "part_size_mismatch")
    long = api.put(session["id"], 1, b"x" * 10, CONTENT_LENGTH="11")
    assert (long.status_code, error_code(long)) == (413, "part_too_large")
    assert temp_keys() == []
    assert not UploadPart.objects.exists()


@pytest.mark.parametrize("status", ["aborted", "failed", "complete"])
def test_part_for_a_terminal_session_is_410_and_leaves_nothing(api, status):
    session = api.start(b"x" * 20, 10)
    UploadSession.objects.update(status=status)
    response = api.put(session["id"], 1, b"x" * 10)
    assert (response.status_code, error_code(response)) == (410, f"session_{status}")
    assert temp_keys() == []
    assert not UploadPart.objects.exists()


@pytest.mark.parametrize("when", ["11:00:00", "11:00:01"])  # at expires_at: expired
def test_part_for_an_expired_session_is_410_and_the_session_stays_open(api, settings, when):
    settings.PORTAL_SESSION_TTL_HOURS = 1
    with time_machine.travel("2030-01-01 10:00:00Z", tick=False):
        session = api.start(b"x" * 20, 10)
    with time_machine.travel(f"2030-01-01 {when}Z", tick=False):
        response = api.put(session["id"], 1, b"x" * 10)
        assert (response.status_code, error_code(response)) == (410, "session_expired")
        finalize = api.finalize(session["id"])
        assert (finalize.status_code, error_code(finalize)) == (410, "session_expired")
    assert temp_keys() == []
    assert UploadSession.objects.get().status == "init"


def after_store(monkeypatch, act):
    """Run ``act`` once a part's bytes are stored and before its transaction begins: what
    another request or a cleanup may do in between."""
    from portal.services import chunks

    real_write = chunks.write

    def write_then_act(*args, **kwargs):
        stored = real_write(*args, **kwargs)
        act()
        return stored

    monkeypatch.setattr(chunks, "write", write_then_act)


def test_session_closed_while_the_part_streamed_is_410_and_its_object_deleted(api, monkeypatch):
    """The locked re-check: the session was aborted after the first check."""
    session = api.start(b"x" * 2 * 65536, 65536)
    after_store(monkeypatch, lambda: UploadSession.objects.update(status="aborted"))
    response = api.put(session["id"], 1, b"x" * 65536)
    assert (response.status_code, error_code(response)) == (410, "session_aborted")
    assert objects.own_temp_keys() == [] and objects.assembly_blocks() == 0
    assert not UploadPart.objects.exists()


def test_session_deleted_while_the_part_streamed_is_404_and_its_object_deleted(api, monkeypatch):
    """The row is gone when the part's transaction locks it (pruned in between)."""
    session = api.start(b"x" * 2 * 65536, 65536)
    after_store(monkeypatch, lambda: UploadSession.objects.all().delete())
    response = api.put(session["id"], 1, b"x" * 65536)
    assert (response.status_code, error_code(response)) == (404, "session_not_found")
    assert objects.own_temp_keys() == [] and objects.assembly_blocks() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_puts_count_once(postgres_only, user, portal_storage):
    token = make_token(user)
    api = Api(Client(), token)
    session = api.start(b"p" * 4096 + b"q" * 4096, 4096)
    results, barrier = [], threading.Barrier(8)

    def put(number, body):
        try:
            barrier.wait()
            results.append(Api(Client(), token).put(session["id"], number, body).status_code)
        finally:
            connection.close()

    jobs = [(1, b"p" * 4096)] * 4 + [(2, b"q" * 4096)] * 4
    threads = [threading.Thread(target=put, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # an upload that finds its part's range held by another is refused (local disk)
    assert results.count(201) == 2 and set(results) <= {200, 201, 409}
    row = UploadSession.objects.get()
    assert (row.completed_parts, row.bytes_received) == (2, 8192)
    parts = UploadPart.objects.order_by("part_number")
    assert [p.part_number for p in parts] == [1, 2]
    kept = {p.temp_key for p in parts}
    assert set(temp_keys()) == kept  # the replays stored nothing


def test_a_stream_that_ends_before_its_content_length_is_400_and_keeps_nothing(api, user):
    """A body that ends early without an error (a proxy or server that reports EOF as the
    end of the stream) is caught by the size check after the write, not only by the
    server's own disconnect handling."""
    import io

    from portal.services import chunks
    from portal.services.errors import BadRequest

    session = api.start(b"x" * 1000, 1000)
    with pytest.raises(BadRequest) as refused:
        chunks.receive_part(user, session["id"], 1, io.BytesIO(b"z" * 500), "1000")
    assert refused.value.code == "incomplete_part"
    assert not UploadPart.objects.exists()
    assert objects.own_temp_keys() == []
