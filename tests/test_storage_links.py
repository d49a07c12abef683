"""Links planted under a local storage root are refused, never followed (``local_walk``).

A hostile local user (or a careless operator) puts a hard link at a session's assembly
path, or a symlink in place of a directory under ``temp/`` or ``final/``: no client byte
may land outside the root or in a file somebody else holds a name of, finalize must not
succeed through the link, and cleanup must not delete through it. Real files in tmp dirs.
"""

import errno
import logging
import os
import shutil
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from portal import storage
from portal.models import UploadPart, UploadSession
from portal.services import cleanup
from portal.storage import local_in_place, local_walk
from tests.api_helpers import Api, error_code, make_token, sha256
from tests.conftest import apply_storage
from tests.processes import ServerProcess

CHUNK = 64 * 1024
PLANTED = b"the planted file's own bytes"


@pytest.fixture
def api(client, user, settings, data_dir):
    apply_storage(settings, "local", data_dir)
    return Api(client, make_token(user))


@pytest.fixture
def outside(tmp_path):
    """A directory outside both storage roots, which must stay as it is."""
    path = tmp_path / "outside"
    path.mkdir()
    return path


def refuse_link(*args, **kwargs):
    raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))


def temp_root():
    return storage.temp_storage().location


def final_root():
    return storage.final_storage().location


def assembly_path(session_id):
    return os.path.join(temp_root(), storage.assembly_key(session_id))


def shard(session_id):
    return os.path.join(temp_root(), uuid.UUID(session_id).hex[:2])


def final_path(session_id):
    row = UploadSession.objects.select_related("file").get(pk=session_id)
    return os.path.join(final_root(), storage.new_final_key(row.file_id, now=row.file.created_at))


def refusals(caplog):
    return [r for r in caplog.records if getattr(r, "event", "") == "storage.link_refused"]


def files_under(path):
    return sorted(
        os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs
    )


@pytest.mark.parametrize("plant, says", [(os.link, "2 names"), (os.symlink, "symlink")])
def test_a_link_planted_at_the_assembly_path_gets_no_byte(api, outside, caplog, plant, says):
    """A hard link (the file has 2 names) or a symlink (``O_NOFOLLOW`` fails with ``ELOOP``):
    a refused link, an ERROR that says so, not a storage outage."""
    data = os.urandom(2 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    planted = outside / "victim"
    planted.write_bytes(PLANTED)
    os.makedirs(shard(session), exist_ok=True)
    plant(planted, assembly_path(session))

    with caplog.at_level(logging.ERROR, logger="portal.services"):
        response = api.put(session, 1, data[:CHUNK])

    assert (response.status_code, error_code(response)) == (503, "storage_unavailable")
    assert planted.read_bytes() == PLANTED
    assert not UploadPart.objects.exists()
    [record] = refusals(caplog)
    assert record.levelno == logging.ERROR and says in record.error


def test_an_assembly_file_of_another_user_gets_no_byte(api, monkeypatch):
    """A file another user planted (and so may write to) at the assembly path: refused by
    its owner. The test cannot chown, so this process pretends to be another user."""
    data = os.urandom(CHUNK)
    session = api.start(data, CHUNK)["id"]
    os.makedirs(shard(session), exist_ok=True)
    with open(assembly_path(session), "wb") as handle:
        handle.write(PLANTED)
    monkeypatch.setattr(local_walk.os, "geteuid", lambda: os.getuid() + 1)

    response = api.put(session, 1, data)

    assert (response.status_code, error_code(response)) == (503, "storage_unavailable")
    with open(assembly_path(session), "rb") as handle:
        assert handle.read() == PLANTED
    assert not UploadPart.objects.exists()


def test_the_final_file_never_shares_an_inode_with_a_planted_link(api, outside):
    """A link to the assembly file made after the parts arrived: finalize refuses to make
    the stored file that inode (whose other name's owner could change it)."""
    data = os.urandom(2 * CHUNK + 5)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK)
    planted = outside / "second-name"
    os.link(assembly_path(session), planted)

    response = api.finalize(session)

    assert (response.status_code, error_code(response)) == (503, "storage_unavailable")
    assert UploadSession.objects.get().status == "finalizing"
    assert not os.path.exists(final_path(session))
    assert os.stat(planted).st_nlink == 2  # the assembly file and the planted name only

    os.unlink(planted)  # the operator removes it: the next finalize goes through
    response = api.finalize(session)
    assert response.json()["file"]["sha256"] == sha256(data)
    assert os.path.samefile(final_path(session), assembly_path(session))


def test_a_symlinked_shard_directory_gets_no_part(api, outside):
    data = os.urandom(CHUNK)
    session = api.start(data, CHUNK)["id"]
    for number in range(256):  # plant every shard
        os.symlink(outside, os.path.join(temp_root(), f"{number:02x}"))

    response = api.put(session, 1, data)

    assert (response.status_code, error_code(response)) == (503, "storage_unavailable")
    assert files_under(outside) == [] and not UploadPart.objects.exists()
    assert (api.finalize(session).status_code, UploadSession.objects.get().status) == (409, "init")


def test_finalize_does_not_read_parts_through_a_symlinked_shard(api, outside):
    """The shard directory moved outside the root after the parts arrived and a symlink
    put in its place: the parts are not read through it and nothing is stored."""
    data = os.urandom(2 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK)
    moved = outside / "moved"
    os.rename(shard(session), moved)
    os.symlink(moved, shard(session))

    response = api.finalize(session)

    assert response.status_code in (410, 503), response.content
    assert UploadSession.objects.get().status in ("finalizing", "failed")
    assert not os.path.exists(final_path(session))
    assert files_under(final_root()) == []


@pytest.mark.parametrize("link", [True, False], ids=["link", "copy"])
def test_a_symlinked_directory_under_final_gets_no_file(api, monkeypatch, outside, link):
    if not link:
        monkeypatch.setattr(local_in_place.os, "link", refuse_link)
    data = os.urandom(2 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK)
    year = os.path.relpath(final_path(session), final_root()).split("/")[0]
    os.symlink(outside, os.path.join(final_root(), year))

    response = api.finalize(session)

    assert (response.status_code, error_code(response)) == (503, "storage_unavailable")
    assert files_under(outside) == []
    assert UploadSession.objects.get().status == "finalizing"


@pytest.mark.parametrize("link", [True, False], ids=["link", "copy"])
def test_a_hard_link_planted_at_the_final_path_is_replaced_not_written(
    api, monkeypatch, outside, link
):
    """The final object is always a fresh inode: a planted file at its path (a hard link
    to a file outside) is replaced, never truncated and written."""
    data = os.urandom(2 * CHUNK + 3)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK)
    planted = outside / "victim"
    planted.write_bytes(PLANTED)
    os.makedirs(os.path.dirname(final_path(session)))
    os.link(planted, final_path(session))
    if not link:
        monkeypatch.setattr(local_in_place.os, "link", refuse_link)

    assert api.finalize(session).json()["file"]["sha256"] == sha256(data)
    assert planted.read_bytes() == PLANTED and os.stat(planted).st_nlink == 1
    with open(final_path(session), "rb") as handle:
        assert handle.read() == data


def test_cleanup_deletes_nothing_through_a_symlinked_directory(api, outside):
    """Parts of an aborted session whose shard became a symlink to a directory holding
    files of the same names: cleanup leaves those files alone and reports the keys."""
    data = os.urandom(2 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK)
    api.abort(session)
    moved = outside / "moved"
    os.rename(shard(session), moved)
    os.symlink(moved, shard(session))
    before = files_under(outside)
    later = cleanup.CleanupOptions(now=timezone.now() + timedelta(days=30))

    result = cleanup.run_cleanup(later)

    assert files_under(outside) == before != []
    assert set(UploadPart.objects.values_list("temp_key", flat=True)) == {
        storage.assembly_key(session)
    }
    failures = {key: reason for step in result for key, reason in step.failures.items()}
    assert list(failures) == [storage.assembly_key(session)]
    assert failures[storage.assembly_key(session)].startswith("LinkRefused")


def test_deleting_final_objects_does_not_follow_a_symlinked_directory(api, outside):
    (outside / "victim").write_bytes(PLANTED)
    os.symlink(outside, os.path.join(final_root(), "2026"))

    result = storage.delete_final(["2026/victim"])

    assert list(result.failed) == ["2026/victim"] and "LinkRefused" in result.failed["2026/victim"]
    assert (outside / "victim").read_bytes() == PLANTED


def test_the_listing_follows_no_symlinked_directory(api, outside):
    (outside / "victim").write_bytes(PLANTED)
    os.symlink(outside, os.path.join(temp_root(), "ab"))
    os.makedirs(os.path.join(temp_root(), "cd"))
    with open(os.path.join(temp_root(), "cd", "own"), "wb") as handle:
        handle.write(b"x")
    os.symlink(outside / "victim", os.path.join(temp_root(), "cd", "link"))  # nor a file

    assert [item.key for item in storage.list_temp()] == ["cd/own"]
    cleanup.sweep_temp_storage(cleanup.CleanupOptions(now=timezone.now() + timedelta(days=30)))
    assert (outside / "victim").read_bytes() == PLANTED
    assert not os.path.exists(os.path.join(temp_root(), "cd", "own"))


def test_a_root_that_is_itself_a_symlink_is_followed(client, user, settings, tmp_path):
    """The operator may put a root on another volume through a symlink: only what is
    below a root is never followed."""
    volume = tmp_path / "volume"
    data_dir = tmp_path / "data"
    for prefix in ("temp", "final"):
        (volume / prefix).mkdir(parents=True)
    data_dir.mkdir()
    for prefix in ("temp", "final"):
        os.symlink(volume / prefix, data_dir / prefix)
    apply_storage(settings, "local", data_dir)
    api = Api(client, make_token(user))
    data = os.urandom(2 * CHUNK + 1)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK)

    assert api.finalize(session).json()["file"]["sha256"] == sha256(data)
    assert len(files_under(volume / "final")) == 1


@pytest.mark.slow
def test_a_planted_hard_link_is_refused_by_the_real_server(
    client, user, subprocess_env, tmp_path, outside
):
    """Through gunicorn (``gunicorn.conf.py``): the part gets 503, the planted file keeps
    its bytes, and the server logs ``storage.link_refused`` at ERROR."""
    data_dir = tmp_path / "served"
    for prefix in ("temp", "final"):
        (data_dir / prefix).mkdir(parents=True)
    env = {**subprocess_env, "PORTAL_STORAGE": "local", "PORTAL_DATA_DIR": str(data_dir)}
    token = make_token(user)
    session = Api(client, token).start(os.urandom(CHUNK), CHUNK)["id"]
    key = storage.assembly_key(session)
    (data_dir / "temp" / key).parent.mkdir()
    planted = outside / "victim"
    planted.write_bytes(PLANTED)
    os.link(planted, data_dir / "temp" / key)
    server = ServerProcess.gunicorn(env, tmp_path)
    try:
        status, _, body = server.request(
            "PUT",
            f"/api/v1/uploads/sessions/{session}/parts/1",
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-link-1"},
            body=os.urandom(CHUNK),
        )
    finally:
        server.stop()

    assert (status, b"storage_unavailable" in body) == (503, True)
    assert planted.read_bytes() == PLANTED and not UploadPart.objects.exists()
    [record] = [r for r in server.records() if r.get("event") == "storage.link_refused"]
    assert (record["level"], record["request_id"], record["session_id"]) == (
        "ERROR",
        "req-link-1",
        session,
    )


# Pins of issue #31 (tests/mutant_area_store.py): what the sweep's listing takes while the
# tree changes under it.
@pytest.fixture
def local(settings, data_dir):
    apply_storage(settings, "local", data_dir)
    return data_dir


def test_the_local_listing_takes_regular_files_only_with_their_keys(local):
    root = local / "temp"
    (root / "ab" / "cd").mkdir(parents=True)
    for name in ("top", "ab/mid", "ab/cd/deep"):
        (root / name).write_bytes(b"x")
    os.symlink(root / "top", root / "link-to-file")
    os.symlink(root / "ab" / "mid", root / "ab" / "link")
    os.mkfifo(root / "ab" / "fifo")
    assert sorted(item.key for item in storage.list_temp()) == ["ab/cd/deep", "ab/mid", "top"]


def racing_walk(monkeypatch, race):
    """``os.fwalk`` as a sweep sees it while ``race(top, dir_fd)`` changes the tree
    between a directory's listing and its use."""
    real = os.fwalk

    def fwalk(*args, **kwargs):
        for top, dirs, files, fd in real(*args, **kwargs):
            race(top, fd)
            yield top, dirs, files, fd

    monkeypatch.setattr(os, "fwalk", fwalk)


def test_files_and_directories_vanishing_mid_walk_are_not_listed(local, monkeypatch):
    root = local / "temp"
    for name in ("ab/kept", "ab/gone", "cd/gone-too", "top"):
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_bytes(b"x")

    def race(top, fd):
        if top == ".":
            shutil.rmtree(root / "cd")
        elif top == "./ab":
            os.unlink("gone", dir_fd=fd)

    racing_walk(monkeypatch, race)
    assert sorted(item.key for item in storage.list_temp()) == ["ab/kept", "top"]


def test_an_error_walking_the_local_root_propagates(local, monkeypatch):
    root = local / "temp"
    (root / "ab").mkdir()
    (root / "ab" / "part").write_bytes(b"x")

    def race(top, _fd):
        if top == ".":
            shutil.rmtree(root / "ab")
            os.symlink("ab", root / "ab")  # a loop: opening it fails with ELOOP

    racing_walk(monkeypatch, race)
    with pytest.raises(OSError) as failure:
        list(storage.list_temp())
    assert failure.value.errno == errno.ELOOP
