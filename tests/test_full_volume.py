"""A full volume: parts stop at the reserve, and the instance stays ready while what needs
no room still works (docs/configuration.md, "Free space").

On real small filesystems (``tests.volumes``): a tmpfs holding temp and final, so parts are
written in place and finalize links them; a read-only one for a broken volume.
"""

import errno
import json
import os

import pytest
from django.test import Client

from portal.health import executor as probes
from portal.models import UploadPart, UploadSession
from tests.api_helpers import Api, error_code, make_token, sha256
from tests.conftest import apply_storage
from tests.metrics_helpers import TOKEN, scrape, value
from tests.volumes import KIB, fill_up, free

Status = UploadSession.Status


@pytest.fixture
def api(client, user):
    return Api(client, make_token(user))


@pytest.fixture
def volume(small_volume, data_dir, settings):
    """One 1 MiB volume for temp and final; new sessions down to 256 KiB free, a reserve
    of 128 KiB; /ready answers afresh each time."""
    small_volume(data_dir, 1024 * KIB)
    apply_storage(settings, "local", data_dir)
    settings.PORTAL_MIN_FREE_BYTES = 256 * KIB
    settings.PORTAL_FREE_SPACE_RESERVE_BYTES = 128 * KIB
    settings.PORTAL_READY_CACHE_SECONDS = 0
    settings.PORTAL_METRICS_TOKEN = TOKEN
    probes.results.clear()
    yield data_dir
    probes.results.clear()


def test_parts_stop_at_the_reserve(api, volume):
    """100 KiB parts land while one leaves 128 KiB free; the next gets 507, kept nothing."""
    data = os.urandom(900 * KIB)
    session = api.start(data, 100 * KIB)
    statuses = [
        api.put(session["id"], n, data[(n - 1) * 100 * KIB : n * 100 * KIB]) for n in range(1, 10)
    ]

    refused = [n for n, response in enumerate(statuses, 1) if response.status_code == 507]
    assert refused, [response.status_code for response in statuses]
    landed = refused[0] - 1
    assert [r.status_code for r in statuses[:landed]] == [201] * landed
    assert error_code(statuses[landed]) == "insufficient_storage"
    assert free(volume) >= 128 * KIB
    assert UploadPart.objects.count() == landed
    assert UploadSession.objects.get().status == Status.IN_PROGRESS


def test_a_full_volume_keeps_the_instance_ready_for_what_needs_no_room(api, volume, admin_user):
    """Filled to 0 free by someone else: /ready is 200 and says "full"; reads, a finalize
    that links and an abort still work; a new session and a part get 507."""
    data = os.urandom(300 * KIB)
    complete = api.start(data, 100 * KIB)
    api.upload(complete["id"], data, 100 * KIB)
    other = api.start(b"x" * 200 * KIB, 100 * KIB)
    fill_up(volume)

    ready = Client().get("/ready")

    assert ready.status_code == 200, ready.content  # 503 "unavailable" took it out of rotation
    assert ready.json() == {
        "status": "ok",
        "checks": {
            "database": "ok",
            "storage:portal_temp": "full",
            "storage:portal_final": "full",
        },
    }
    assert api.status(complete["id"]).status_code == 200
    finalized = api.finalize(complete["id"])
    assert finalized.status_code == 200, finalized.content
    assert finalized.json()["file"]["sha256"] == sha256(data)
    assert api.abort(other["id"]).status_code == 204
    assert api.create(filename="new.bin", size_bytes=10).status_code == 507
    samples = scrape(Client())  # the alert PortalInstanceNotReady stays quiet
    assert value(samples, "portal_ready_check_up", check="storage:portal_temp") == 1
    staff = Client()
    staff.force_login(admin_user)
    page = staff.get("/status")  # the person on call reads "full", not an outage
    assert page.status_code == 200 and "full" in page.content.decode()
    report = staff.get("/status?format=json")
    assert report.status_code == 200 and report.json()["checks"]["storage:portal_temp"] == "full"


def test_a_read_only_volume_is_unavailable(small_volume, data_dir, settings, db):
    """Broken, not full: a volume that refuses writes for another reason is 503."""
    (data_dir / "final").mkdir()
    small_volume(data_dir / "temp", 256 * KIB, "ro")
    apply_storage(settings, "local", data_dir)
    settings.PORTAL_READY_CACHE_SECONDS = 0
    probes.results.clear()

    ready = Client().get("/ready")

    assert ready.status_code == 503
    assert ready.json()["checks"]["storage:portal_temp"] == "unavailable"
    assert ready.json()["checks"]["storage:portal_final"] == "ok"
    probes.results.clear()


@pytest.mark.slow
def test_a_real_server_stays_ready_on_a_full_volume_and_not_on_a_broken_one(
    small_volume, data_dir, settings, tmp_path
):
    """gunicorn with gunicorn.conf.py: 200 "full" at 0 bytes free (the container health
    check passes too), 503 once the temp root is gone."""
    from tests.health_helpers import Server, base_env, health_check_command
    from tests.processes import run_manage

    small_volume(data_dir, 1024 * KIB)
    env = base_env(
        apply_storage(settings, "local", data_dir),
        DATABASE_URL=f"sqlite:///{tmp_path / 'portal.sqlite3'}",
    )
    run_manage(env, "migrate", "--noinput")
    fill_up(data_dir)
    server = Server(env, tmp_path / "gunicorn.log")
    try:
        status, body = server.get("/ready")
        assert status == 200, body
        assert json.loads(body)["checks"]["storage:portal_temp"] == "full"
        assert health_check_command(server, env).returncode == 0
        (data_dir / "temp").rename(data_dir / "temp-unmounted")
        status, body = server.get("/ready")
        assert status == 503
        assert json.loads(body)["checks"]["storage:portal_temp"] == "unavailable"
    finally:
        server.stop()


@pytest.mark.parametrize(("number", "full"), [("ENOSPC", True), ("EDQUOT", True), ("EIO", False)])
def test_a_full_volume_or_quota_is_storage_full_and_other_os_errors_an_outage(
    any_storage, number, full
):
    """Full (507, ``insufficient_storage``) for ENOSPC and EDQUOT alike: the user's quota
    on the volume is as full as the volume; any other failure is an outage (503)."""
    from portal import storage
    from portal.storage import backend_faults

    with (
        pytest.raises(storage.StorageUnavailable) as caught,
        backend_faults(storage.temp_storage()),
    ):
        raise OSError(getattr(errno, number), os.strerror(getattr(errno, number)))
    assert isinstance(caught.value, storage.StorageFull) is full
