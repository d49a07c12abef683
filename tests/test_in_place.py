"""Parts written in place on local disk: one assembly file per session, the final file a
link to it, replays only hashed, a concurrent upload of a part refused, and what cleanup
and finalize do with the file (portal.storage.local_in_place)."""

import contextlib
import errno
import io
import os
import shutil
from datetime import timedelta

import pytest
from django.db import OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal import storage
from portal.models import UploadPart, UploadSession
from portal.services import chunks, cleanup, filehash
from portal.services.errors import Gone
from portal.storage import local_in_place
from portal.storage.sha256state import ResumableSha256
from tests import objects
from tests.api_helpers import Api, error_code, make_token, sha256
from tests.conftest import apply_storage
from tests.storage_helpers import CHUNK, assembly_path, final_path


@pytest.fixture
def api(client, user, settings, data_dir):
    apply_storage(settings, "local", data_dir)
    return Api(client, make_token(user))


def keys(session_id):
    return set(UploadPart.objects.filter(session_id=session_id).values_list("temp_key", flat=True))


def saved_parts(session_id):
    row = UploadSession.objects.get(pk=session_id)
    resumed = ResumableSha256.resume(row.hash_state, filehash.hashed_bytes(row, row.hashed_parts))
    return row.hashed_parts if resumed else 0


def test_parts_land_in_one_file_and_finalize_links_it(api):
    data = os.urandom(3 * CHUNK + 99)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=[2, 4, 1, 3])

    assert keys(session) == {storage.assembly_key(session)}
    assert objects.own_temp_keys() == []
    with open(assembly_path(session), "rb") as handle:
        assert handle.read() == data
    assert saved_parts(session) == 4  # the early parts were caught up from the file

    body = api.finalize(session).json()
    assert body["file"]["sha256"] == sha256(data)
    assert os.path.samefile(final_path(session), assembly_path(session))  # no copy
    cleanup.run_cleanup()
    assert not os.path.exists(assembly_path(session))
    with open(final_path(session), "rb") as handle:
        assert handle.read() == data


def test_a_replay_is_only_hashed_and_never_touches_the_recorded_range(api):
    data = os.urandom(2 * CHUNK)
    first, second = data[:CHUNK], data[CHUNK:]
    session = api.start(data, CHUNK)["id"]
    assert api.put(session, 1, first).status_code == 201

    assert api.put(session, 1, first).status_code == 200
    conflict = api.put(session, 1, bytes(CHUNK))
    assert (conflict.status_code, error_code(conflict)) == (409, "part_conflict")

    assert objects.part_bytes(UploadPart.objects.get()) == first
    assert objects.own_temp_keys() == []  # nothing was stored for the replays
    api.put(session, 2, second)
    assert api.finalize(session).json()["file"]["sha256"] == sha256(data)


def test_an_upload_of_a_part_whose_range_is_held_is_409_and_its_retry_is_stored(api):
    """Two uploads of one part at once: the one that finds the range locked is refused
    (409 ``part_in_progress``) with nothing stored; once the range is free a retry goes in
    place and the file is linked."""
    data = os.urandom(2 * CHUNK + 5)
    session = api.start(data, CHUNK)["id"]
    with storage.backend().part_range(session, CHUNK, CHUNK):  # another request's lock
        busy = api.put(session, 2, data[CHUNK : 2 * CHUNK])
    assert (busy.status_code, error_code(busy)) == (409, "part_in_progress")
    assert not UploadPart.objects.exists() and objects.own_temp_keys() == []

    api.upload(session, data, CHUNK, order=[2, 1, 3])
    assert api.finalize(session).json()["file"]["sha256"] == sha256(data)
    assert os.path.samefile(final_path(session), assembly_path(session))


def test_a_finished_range_is_free_for_the_next_request(api):
    data = os.urandom(CHUNK)
    session = api.start(data, CHUNK)["id"]
    with storage.backend().part_range(session, 0, CHUNK) as held:
        assert held is not None
    with storage.backend().part_range(session, 0, CHUNK) as again:
        assert again is not None
        with (
            pytest.raises(storage.RangeBusy),
            storage.backend().part_range(session, CHUNK // 2, CHUNK),
        ):
            pass


@pytest.mark.parametrize("damage", ["delete", "truncate", "directory"])
def test_a_damaged_assembly_file_fails_finalize_or_is_an_outage(api, damage):
    data = os.urandom(3 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK)
    path = assembly_path(session)
    if damage == "truncate":
        os.truncate(path, CHUNK + 10)
    else:
        os.unlink(path)
    if damage == "directory":
        os.mkdir(path)

    response = api.finalize(session)

    if damage == "directory":  # a broken volume: nothing is failed, it is retried
        assert (response.status_code, error_code(response)) == (503, "storage_unavailable")
        assert UploadSession.objects.get().status == "finalizing"
        return
    assert (response.status_code, error_code(response)) == (410, "part_corrupt")
    expected = "part 1 is missing" if damage == "delete" else "part 2 no longer matches"
    assert expected in UploadSession.objects.get().failure_reason


def test_finalize_taken_over_after_the_link_replaces_nothing_it_needs(api):
    """An assembler that died after linking: the next one finds the final name there."""
    data = os.urandom(2 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK)
    row = UploadSession.objects.select_related("file").get(pk=session)
    sources = [
        storage.part_source(p.part_number, p.size_bytes, p.sha256, p.temp_key, p.temp_offset)
        for p in UploadPart.objects.order_by("part_number")
    ]
    key = storage.new_final_key(row.file_id, now=row.file.created_at)
    final = storage.final_storage().path(key)
    os.makedirs(os.path.dirname(final))
    with open(final, "wb") as stale:
        stale.write(b"a dead assembler's partial copy")

    for _ in range(2):
        stored = storage.assemble_final(sources, file_id=row.file_id, now=row.file.created_at)
        assert (stored.key, stored.sha256) == (key, sha256(data))
        assert os.path.samefile(final, assembly_path(session))


def test_temp_and_final_on_different_filesystems_copy(client, user, settings, data_dir):
    shm = "/dev/shm"
    if not os.path.isdir(shm) or os.stat(shm).st_dev == os.stat(data_dir).st_dev:
        pytest.skip("needs /dev/shm on a filesystem of its own")
    apply_storage(settings, "local", data_dir)
    temp = os.path.join(shm, f"portal-test-{os.getpid()}-{id(data_dir)}")
    os.mkdir(temp)
    try:
        settings.STORAGES = {
            **settings.STORAGES,
            "portal_temp": {**settings.STORAGES["portal_temp"]},
        }
        settings.STORAGES["portal_temp"]["OPTIONS"] = {
            **settings.STORAGES["portal_temp"]["OPTIONS"],
            "location": temp,
        }
        api = Api(client, make_token(user))
        data = os.urandom(2 * CHUNK + 1)
        session = api.start(data, CHUNK)["id"]
        api.upload(session, data, CHUNK)
        assert api.finalize(session).json()["file"]["sha256"] == sha256(data)
        assert os.stat(final_path(session)).st_dev != os.stat(assembly_path(session)).st_dev
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def test_the_sweep_keeps_an_active_sessions_file_and_removes_an_ended_ones(api):
    data = os.urandom(2 * CHUNK)
    idle = api.start(data, CHUNK)["id"]
    ended = api.start(os.urandom(2 * CHUNK), CHUNK)["id"]
    for session in (idle, ended):
        with storage.backend().part_range(session, 0, CHUNK):
            pass  # a write that never got recorded: the file exists, no row points to it
    api.abort(ended)
    later = cleanup.CleanupOptions(now=timezone.now() + timedelta(days=30))

    cleanup.sweep_temp_storage(later)

    assert os.path.exists(assembly_path(idle))
    assert not os.path.exists(assembly_path(ended))
    api.upload(idle, data, CHUNK)
    assert api.finalize(idle).json()["file"]["sha256"] == sha256(data)


def test_the_sweep_keeps_the_file_of_a_session_being_finalized(api):
    """A session being assembled is active too, though no longer open to parts: its file
    (the assembly's source, maybe its final file soon) stays whatever its age."""
    session = api.start(os.urandom(2 * CHUNK), CHUNK)["id"]
    with storage.backend().part_range(session, 0, CHUNK):
        pass  # a write that never got recorded: the file exists, no row points to it
    UploadSession.objects.filter(pk=session).update(status=UploadSession.Status.FINALIZING)

    cleanup.sweep_temp_storage(cleanup.CleanupOptions(now=timezone.now() + timedelta(days=30)))

    assert os.path.exists(assembly_path(session))


def test_the_sweep_removes_an_ended_sessions_file_at_once_not_after_the_grace(api):
    """A session file is judged by its session, not its age: the grace for objects
    nothing records does not keep the file of a session that has ended."""
    ended = api.start(os.urandom(2 * CHUNK), CHUNK)["id"]
    with storage.backend().part_range(ended, 0, CHUNK):
        pass  # a write that never got recorded: the file exists, no row points to it
    api.abort(ended)

    cleanup.sweep_temp_storage(cleanup.CleanupOptions(now=timezone.now()))

    assert not os.path.exists(assembly_path(ended))


def test_a_closed_session_gets_no_file_made_for_it(api, user, monkeypatch):
    """The session closed between the request's first check and its range: the file the
    request made for it goes again, and nothing is stored."""
    session = api.start(os.urandom(CHUNK), CHUNK)["id"]
    stale = UploadSession.objects.get(pk=session)
    UploadSession.objects.update(status="aborted")
    monkeypatch.setattr(chunks, "get_session", lambda owner, session_id, for_part=False: stale)

    with pytest.raises(Gone):
        chunks.receive_part(user, session, 1, io.BytesIO(b"x" * CHUNK), str(CHUNK))

    assert not os.path.exists(assembly_path(session))
    assert objects.own_temp_keys() == [] and not UploadPart.objects.exists()


def test_orphans_clear_every_part_sharing_the_file_in_one_run(api):
    data = os.urandom(5 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK)
    api.abort(session)

    cleanup.cleanup_orphan_temp_parts(cleanup.CleanupOptions(batch_size=2))

    assert keys(session) == {""}
    assert not os.path.exists(assembly_path(session))


class _CommitThenFail:
    """``transaction`` whose first ``atomic`` block commits, then raises as if the
    connection dropped before the answer came back: the outcome is unknown to the caller."""

    def __init__(self):
        self.armed = True

    @contextlib.contextmanager
    def atomic(self, *args, **kwargs):
        with transaction.atomic(*args, **kwargs):
            yield
        if self.armed:
            self.armed = False
            raise OperationalError("server closed the connection unexpectedly")


@pytest.mark.parametrize("order", [[1, 2, 3], [2, 1, 3]])
def test_a_commit_whose_answer_was_lost_keeps_its_range(api, user, monkeypatch, order):
    data = os.urandom(3 * CHUNK)
    parts = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    session = api.start(data, CHUNK)["id"]
    first, *rest = order
    if first == 1:
        api.put(session, 1, parts[0])
        first, *rest = rest
    monkeypatch.setattr(chunks, "transaction", _CommitThenFail())
    with pytest.raises(OperationalError):
        chunks.receive_part(user, session, first, io.BytesIO(parts[first - 1]), str(CHUNK))
    monkeypatch.undo()

    assert api.put(session, first, parts[first - 1]).status_code == 200  # the retry
    for number in rest:
        api.put(session, number, parts[number - 1])
    assert api.finalize(session).json()["file"]["sha256"] == sha256(data)
    with open(final_path(session), "rb") as handle:
        assert handle.read() == data


@pytest.mark.parametrize("refusal", [errno.EXDEV, errno.EIO])
def test_a_link_the_filesystem_refuses_is_a_copy_any_other_error_an_outage(
    api, monkeypatch, refusal
):
    """Two mounts of one filesystem share st_dev but refuse link(2) (EXDEV): finalize
    copies. The refusal is the kernel's; a bind mount needs privileges tests lack."""

    def refuse(*args, **kwargs):
        raise OSError(refusal, os.strerror(refusal))

    data = os.urandom(2 * CHUNK + 7)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK)
    monkeypatch.setattr(local_in_place.os, "link", refuse)

    response = api.finalize(session)

    if refusal == errno.EIO:
        assert (response.status_code, error_code(response)) == (503, "storage_unavailable")
        assert UploadSession.objects.get().status == "finalizing"
        return
    assert response.json()["file"]["sha256"] == sha256(data)
    assert not os.path.samefile(final_path(session), assembly_path(session))
    with open(final_path(session), "rb") as handle:
        assert handle.read() == data


def test_a_part_the_saved_hash_did_not_cover_is_checked_at_finalize(api, monkeypatch):
    monkeypatch.setattr(filehash, "CATCH_UP_BYTES", 0)  # early parts stay unhashed
    data = os.urandom(3 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=[2, 1, 3])
    assert saved_parts(session) == 1
    with open(assembly_path(session), "r+b") as handle:
        handle.seek(2 * CHUNK + 100)
        handle.write(b"tampered")

    response = api.finalize(session)

    assert (response.status_code, error_code(response)) == (410, "part_corrupt")
    assert "part 3" in UploadSession.objects.get().failure_reason
    row = UploadSession.objects.select_related("file").get()
    key = storage.new_final_key(row.file_id, now=row.file.created_at)
    assert not objects.final_exists(key)


def test_the_sweep_asks_about_a_batch_of_session_files_at_once(api):
    sessions = [api.start(os.urandom(CHUNK), CHUNK)["id"] for _ in range(30)]
    for session in sessions:
        with storage.backend().part_range(session, 0, CHUNK):
            pass
    with CaptureQueriesContext(connection) as queries:
        cleanup.sweep_temp_storage(cleanup.CleanupOptions(now=timezone.now()))
    assert len(queries) <= 5
    assert all(os.path.exists(assembly_path(session)) for session in sessions)


@pytest.mark.parametrize("target", ["nowhere", "elsewhere"])
def test_a_symlink_in_place_of_the_file_is_refused_not_followed(api, data_dir, target):
    data = os.urandom(CHUNK)
    session = api.start(data, CHUNK)["id"]
    elsewhere = data_dir / "elsewhere"
    elsewhere.write_bytes(b"")
    path = assembly_path(session)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(data_dir / "nowhere" if target == "nowhere" else elsewhere, path)

    response = api.put(session, 1, data)

    assert (response.status_code, error_code(response)) == (503, "storage_unavailable")
    assert elsewhere.read_bytes() == b"" and not UploadPart.objects.exists()
