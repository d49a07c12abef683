"""A finalize asks the final volume only for the bytes its assembly writes, and a finalize
refused for room keeps the session for the client's retries (docs/api.md, 507).

On real small filesystems (``tests.volumes``): one tmpfs holding temp and final (parts
written in place, the final file a link), or one each (the final file a copy).
"""

import os
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from portal import storage
from portal.models import IngestFile, UploadSession
from portal.services import finalize, sessions
from portal.services.finalize import request as finalize_request
from tests.api_helpers import Api, error_code, make_token, sha256
from tests.conftest import apply_storage
from tests.volumes import KIB, MIB, fill, free

Status = UploadSession.Status


@pytest.fixture
def api(client, user):
    return Api(client, make_token(user))


def final_file(response):
    """The stored file behind a finalize answer, on disk."""
    file = IngestFile.objects.get(pk=response.json()["file"]["id"])
    return Path(storage.backend().final_location(file.storage_key)["path"])


def test_a_file_larger_than_the_free_space_finalizes_by_link(api, small_volume, data_dir, settings):
    """13 MiB on a 24 MiB volume holding temp and final: the parts fill it to 11 MiB free,
    and the final file is a second name of their assembly file, so it needs no room."""
    small_volume(data_dir, 24 * MIB)
    apply_storage(settings, "local", data_dir)
    settings.PORTAL_MIN_FREE_BYTES = 4 * MIB
    assert storage.backend().assembles_in_place
    data = os.urandom(13 * MIB)
    session = api.start(data, MIB)

    api.upload(session["id"], data, MIB)  # every part 201
    assert free(data_dir) < len(data)
    response = api.finalize(session["id"])

    assert response.status_code == 200, response.content
    assert response.json()["file"]["sha256"] == sha256(data)
    path = final_file(response)
    assert path.read_bytes() == data
    assert path.stat().st_nlink == 2  # the assembly file's inode: nothing was copied
    assert UploadSession.objects.get().status == Status.COMPLETE


def test_a_copy_refused_for_room_keeps_the_session_until_a_retry_succeeds(api, volumes, settings):
    """507 at 1 h before the TTL runs out: the session is kept a full TTL from then, a
    cleanup past the old TTL leaves it (and its parts) alone, the retry stores it."""
    _, final = volumes
    data = os.urandom(200 * KIB)
    start = timezone.now()
    ttl = timedelta(hours=settings.PORTAL_SESSION_TTL_HOURS)
    with time_machine.travel(start, tick=False):
        session = api.start(data, 100 * KIB)
        api.upload(session["id"], data, 100 * KIB)
    ballast = fill(final, 150 * KIB)
    refused_at = start + ttl - timedelta(hours=1)

    with time_machine.travel(refused_at, tick=False):
        refused = api.finalize(session["id"])

    assert refused.status_code == 507 and error_code(refused) == "insufficient_storage"
    kept = UploadSession.objects.get()
    assert kept.status == Status.IN_PROGRESS
    assert kept.expires_at == refused_at + ttl
    with time_machine.travel(start + ttl + timedelta(hours=1), tick=False):
        call_command("portal_cleanup")
        assert UploadSession.objects.get().status == Status.IN_PROGRESS
        ballast.unlink()
        response = api.finalize(session["id"])
    assert response.status_code == 200, response.content
    assert final_file(response).read_bytes() == data


def test_a_refusal_never_revives_or_shortens_a_session(user, portal_storage):
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        session, _ = sessions.create_session(user, {"filename": "a", "size_bytes": 10})
    ttl = session.expires_at - now
    with time_machine.travel(now - timedelta(hours=1), tick=False):
        assert not finalize_request.keep_for_retries(session.pk)  # would shorten it
    with time_machine.travel(session.expires_at + timedelta(seconds=1), tick=False):
        assert not finalize_request.keep_for_retries(session.pk)  # expired: stays expired
    assert UploadSession.objects.get().expires_at == now + ttl
    with time_machine.travel(now + timedelta(hours=2), tick=False):
        assert finalize_request.keep_for_retries(session.pk)
    assert UploadSession.objects.get().expires_at == now + timedelta(hours=2) + ttl


def test_the_finalize_job_retries_an_assembly_refused_for_room(api, volumes):
    """A finalizing session whose copy does not fit (the volume filled after the request
    started it) stays finalizing; the job reports it and a later run stores it."""
    _, final = volumes
    data = os.urandom(200 * KIB)
    session = api.start(data, 100 * KIB)
    api.upload(session["id"], data, 100 * KIB)
    from portal.services.finalize import lease

    assert lease.begin(session["id"])
    ballast = fill(final, 150 * KIB)
    UploadSession.objects.update(assembly_lease_until=timezone.now() - timedelta(seconds=1))

    report = finalize.run_finalize_job()

    assert report.summary["errors"] == 1 and report.exit_code != 0
    assert UploadSession.objects.get().status == Status.FINALIZING
    ballast.unlink()
    assert finalize.run_finalize_job().summary["completed"] == 1
    assert UploadSession.objects.get().status == Status.COMPLETE


@pytest.fixture
def bind_mounted(small_volume, data_dir, settings):
    """temp and final as two bind mounts of one 1 MiB tmpfs: one filesystem (``st_dev``),
    yet ``link`` between them fails (EXDEV), so finalize has to copy."""
    volume = small_volume(data_dir.parent / "volume", 1024 * KIB)
    for name in ("temp", "final"):
        (volume / name).mkdir()
        (data_dir / name).mkdir()
        bound = subprocess.run(
            ["mount", "--bind", str(volume / name), str(data_dir / name)], capture_output=True
        )
        assert bound.returncode == 0, bound.stderr
    yield volume
    for name in ("final", "temp"):
        subprocess.run(["umount", "-l", str(data_dir / name)], check=False)


def test_a_refused_link_is_copied_only_when_the_copy_fits(api, bind_mounted, settings, data_dir):
    """Room for the copy, but not above the reserve: refused before a byte is copied."""
    apply_storage(settings, "local", data_dir)
    settings.PORTAL_FREE_SPACE_RESERVE_BYTES = 128 * KIB
    data = os.urandom(300 * KIB)
    session = api.start(data, 100 * KIB)
    api.upload(session["id"], data, 100 * KIB)
    ballast = fill(bind_mounted, 350 * KIB)

    refused = api.finalize(session["id"])

    assert refused.status_code == 507, refused.content
    assert "the final volume has no room" in refused.json()["error"]["message"]
    assert not [path for path in (data_dir / "final").rglob("*") if path.is_file()]
    ballast.unlink()
    UploadSession.objects.update(assembly_lease_until=timezone.now() - timedelta(seconds=1))
    assert finalize.run_finalize_job().summary["completed"] == 1
    stored = IngestFile.objects.get()
    path = Path(storage.backend().final_location(stored.storage_key)["path"])
    assert path.read_bytes() == data and path.stat().st_nlink == 1  # a copy
