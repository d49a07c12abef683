"""Guardrails: quotas per owner (atomic), and the free-space guard on a real small volume.

The free-space tests mount a real tmpfs of a few hundred KiB over the storage roots
(``tests.volumes``).
"""

import io
import os
import shutil
import threading

import pytest
from django.db import connection

from portal.models import UploadPart, UploadSession
from portal.services import guards
from tests.api_helpers import Api, error_code, make_token, sha256
from tests.conftest import apply_storage
from tests.volumes import KIB, fill, free


@pytest.fixture
def api(client, user, portal_storage):
    return Api(client, make_token(user))


def test_open_sessions_quota_is_429_naming_the_limit(api, settings):
    settings.PORTAL_MAX_OPEN_SESSIONS_PER_USER = 2
    first = api.start(b"x" * 10, 10, idempotency_key="one")
    api.start(b"x" * 10, 10)

    refused = api.create(filename="third.bin", size_bytes=10)

    assert refused.status_code == 429
    assert error_code(refused) == "quota_exceeded"
    assert refused.json()["error"]["limit"] == "PORTAL_MAX_OPEN_SESSIONS_PER_USER"
    assert refused.json()["error"]["allowed"] == 2
    assert UploadSession.objects.count() == 2
    # The same request again (its idempotency key) is no new session: not refused.
    again = api.create(
        filename="data.bin", size_bytes=10, chunk_size_bytes=10, idempotency_key="one"
    )
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    # Finishing or aborting one makes room.
    assert api.abort(first["id"]).status_code == 204
    assert api.create(filename="third.bin", size_bytes=10).status_code == 201


def test_expired_sessions_do_not_count(api, settings):
    settings.PORTAL_MAX_OPEN_SESSIONS_PER_USER = 1
    stale = api.start(b"x" * 10, 10)
    from datetime import timedelta

    from django.utils import timezone

    UploadSession.objects.filter(pk=stale["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert api.create(filename="fresh.bin", size_bytes=10).status_code == 201


def test_pending_bytes_quota_counts_the_declared_sizes(api, settings, other_user, client):
    settings.PORTAL_MAX_PENDING_BYTES_PER_USER = 100
    assert api.create(filename="a", size_bytes=60).status_code == 201
    refused = api.create(filename="b", size_bytes=41)
    assert refused.status_code == 429
    assert refused.json()["error"]["limit"] == "PORTAL_MAX_PENDING_BYTES_PER_USER"
    assert api.create(filename="c", size_bytes=40).status_code == 201
    # Quotas are per owner: another user has the whole budget.
    other = Api(client, make_token(other_user))
    assert other.create(filename="d", size_bytes=100).status_code == 201


def test_quota_zero_means_no_limit(api, settings):
    settings.PORTAL_MAX_OPEN_SESSIONS_PER_USER = 0
    settings.PORTAL_MAX_PENDING_BYTES_PER_USER = 0
    for index in range(5):
        assert api.create(filename=f"f{index}", size_bytes=10**9).status_code == 201


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_never_overshoot_the_quota(
    postgres_only, user, portal_storage, settings
):
    """Eight creates at once by one owner with room for three: exactly three succeed."""
    from portal.services import sessions
    from portal.services.errors import QuotaExceeded

    settings.PORTAL_MAX_OPEN_SESSIONS_PER_USER = 3
    start = threading.Barrier(8)
    outcomes = []

    def create(index):
        try:
            start.wait(10)
            sessions.create_session(user, {"filename": f"f{index}", "size_bytes": 10})
            outcomes.append("created")
        except QuotaExceeded:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["created"] * 3 + ["refused"] * 5
    assert guards.usage(user.pk) == (3, 30)


def test_the_admin_shows_a_users_usage(admin_client, api, user):
    api.start(b"x" * 30, 10)
    page = admin_client.get("/admin/auth/user/").content.decode()
    assert "Open sessions" in page and "Pending bytes" in page
    assert ">30<" in page.replace(" ", "")


# --- the free-space guard, on a real small filesystem ---------------------------------------


def test_a_nearly_full_volume_refuses_new_sessions_but_lets_open_ones_finish(api, volumes, client):
    temp, _ = volumes
    data = os.urandom(100 * KIB)
    session = api.start(data, 50 * KIB)
    ballast = fill(temp, 110 * KIB)  # below the guard's 128 KiB, room for the parts

    refused = api.create(filename="new.bin", size_bytes=10)
    assert refused.status_code == 507
    assert error_code(refused) == "insufficient_storage"

    api.upload(session["id"], data, 50 * KIB)  # the open session's parts still land
    response = api.finalize(session["id"])
    assert response.status_code == 200
    assert response.json()["file"]["sha256"] == sha256(data)

    ballast.unlink()
    assert api.create(filename="new.bin", size_bytes=10).status_code == 201


def test_a_nearly_full_final_volume_refuses_new_sessions_before_any_byte_is_sent(api, volumes):
    """The final volume counts as much as the temp one: else a client would send every
    part and meet 507 only at finalize."""
    _, final = volumes
    ballast = fill(final, 110 * KIB)

    refused = api.create(filename="new.bin", size_bytes=10)

    assert (refused.status_code, error_code(refused)) == (507, "insufficient_storage")
    assert "final volume" in refused.json()["error"]["message"]
    assert not UploadSession.objects.exists()
    ballast.unlink()
    assert api.create(filename="new.bin", size_bytes=10).status_code == 201


def test_a_part_that_does_not_fit_is_507_and_lands_once_there_is_room(api, volumes):
    temp, _ = volumes
    data = os.urandom(200 * KIB)
    session = api.start(data, 100 * KIB)
    ballast = fill(temp, 60 * KIB)

    response = api.put(session["id"], 1, data[: 100 * KIB])

    assert response.status_code == 507
    assert error_code(response) == "insufficient_storage"
    assert not UploadPart.objects.exists()
    assert UploadSession.objects.get().status == UploadSession.Status.INIT
    ballast.unlink()
    assert api.put(session["id"], 1, data[: 100 * KIB]).status_code == 201


def test_a_part_keeps_the_reserve_of_the_temp_volume_not_the_final_one(api, volumes, settings):
    """A part is written to the temp volume, so that volume's reserve decides: a part that
    fits but would eat into it is refused there, however much room the final volume has."""
    temp, _ = volumes
    settings.PORTAL_MIN_FREE_BYTES = 0
    settings.PORTAL_FREE_SPACE_RESERVE_BYTES = 64 * KIB
    data = os.urandom(200 * KIB)
    session = api.start(data, 100 * KIB)
    ballast = fill(temp, 140 * KIB)  # room for the part, not for the part and the reserve

    response = api.put(session["id"], 1, data[: 100 * KIB])

    assert (response.status_code, error_code(response)) == (507, "insufficient_storage")
    assert "the temp volume has no room" in response.json()["error"]["message"]
    assert not UploadPart.objects.exists()
    ballast.unlink()
    assert api.put(session["id"], 1, data[: 100 * KIB]).status_code == 201


def test_a_tus_patch_keeps_the_temp_volumes_reserve_and_lands_once_there_is_room(
    client, user, volumes, settings
):
    from tests.tus_helpers import Tus

    temp, _ = volumes
    settings.PORTAL_MIN_FREE_BYTES = 0
    settings.PORTAL_FREE_SPACE_RESERVE_BYTES = 64 * KIB
    settings.PORTAL_CHUNK_SIZE = 100 * KIB
    tus = Tus(client, make_token(user))
    data = os.urandom(100 * KIB)
    path = tus.start(len(data))
    ballast = fill(temp, 140 * KIB)  # room for the bytes, not for the bytes and the reserve

    response = tus.patch(path, 0, data)

    assert (response.status_code, error_code(response)) == (507, "insufficient_storage")
    assert "the temp volume has no room" in response.json()["error"]["message"]
    assert tus.offset(path) == 0 and not UploadPart.objects.exists()
    ballast.unlink()
    assert tus.patch(path, 0, data).status_code == 204
    assert UploadSession.objects.get().status == UploadSession.Status.COMPLETE


def test_a_part_may_leave_exactly_the_reserve_free_and_not_a_byte_less(api, volumes, settings):
    temp, _ = volumes
    settings.PORTAL_MIN_FREE_BYTES = 0
    data = os.urandom(200 * KIB)
    session = api.start(data, 100 * KIB)

    settings.PORTAL_FREE_SPACE_RESERVE_BYTES = free(temp) - 100 * KIB + 1
    assert api.put(session["id"], 1, data[: 100 * KIB]).status_code == 507
    settings.PORTAL_FREE_SPACE_RESERVE_BYTES = free(temp) - 100 * KIB
    assert api.put(session["id"], 1, data[: 100 * KIB]).status_code == 201


@pytest.mark.s3
def test_on_s3_the_free_space_floor_refuses_no_new_session(api, settings, data_dir, moto_s3):
    """S3 has no volume to measure: nothing to compare with ``PORTAL_MIN_FREE_BYTES``."""
    apply_storage(settings, "s3", data_dir, s3=moto_s3, bucket=moto_s3.new_bucket())
    settings.PORTAL_MIN_FREE_BYTES = 1024 * KIB
    assert api.create(filename="a.bin", size_bytes=10).status_code == 201


def test_finalize_refuses_a_file_the_final_volume_cannot_take(api, volumes):
    _, final = volumes
    data = os.urandom(200 * KIB)
    session = api.start(data, 100 * KIB)
    api.upload(session["id"], data, 100 * KIB)
    ballast = fill(final, 150 * KIB)

    response = api.finalize(session["id"])

    assert response.status_code == 507
    assert error_code(response) == "insufficient_storage"
    assert UploadSession.objects.get().status == UploadSession.Status.IN_PROGRESS
    assert list(final.iterdir()) == [ballast]  # nothing half-written
    ballast.unlink()
    assert api.finalize(session["id"]).status_code == 200


class FillingStream:
    """A part's body whose first read fills the volume: another writer took the room
    between the guard's check and the write."""

    def __init__(self, data, volume):
        self.data, self.volume, self.filled = io.BytesIO(data), volume, False

    def read(self, size=-1):
        if not self.filled:
            fill(self.volume, 8 * KIB)
            self.filled = True
        return self.data.read(size)


def test_a_write_that_runs_out_of_room_is_507_and_keeps_nothing(api, user, volumes):
    from portal.services import chunks
    from portal.services.errors import InsufficientStorage

    temp, _ = volumes
    data = os.urandom(100 * KIB)
    session = api.start(data, 100 * KIB)

    with pytest.raises(InsufficientStorage) as refused:
        chunks.receive_part(user, session["id"], 1, FillingStream(data, temp), str(len(data)))

    assert refused.value.status == 507 and refused.value.code == "insufficient_storage"
    assert not UploadPart.objects.exists()
    files = [path for path in temp.rglob("*") if path.is_file() and path.name != "ballast"]
    # the partial part is gone, or (written in place) its blocks are (shard dirs may stay)
    assert [path.stat().st_blocks for path in files] in ([], [0])


def test_status_shows_free_space_with_its_warning(admin_client, volumes, settings):
    temp, _ = volumes
    body = admin_client.get("/status?format=json").json()
    assert body["disk"]["portal_temp"]["state"] == "ok"
    assert body["disk"]["portal_temp"]["refuse_new_uploads_below_bytes"] == 128 * KIB
    fill(temp, 200 * KIB)  # above the guard, below twice it
    body = admin_client.get("/status?format=json").json()
    assert body["disk"]["portal_temp"]["state"] == "warning"
    assert body["disk"]["portal_temp"]["free_bytes"] < 256 * KIB
    assert body["disk"]["portal_final"]["state"] == "ok"
    assert body["status"] == "ok"  # a warning never makes the instance unavailable


def test_the_page_says_new_uploads_are_refused_exactly_when_the_guard_refuses(
    api, admin_client, volumes, settings
):
    temp, final = volumes
    settings.PORTAL_MIN_FREE_BYTES = min(free(temp), free(final))  # at the floor: taken
    page = admin_client.get("/status", HTTP_ACCEPT="text/html").content.decode()
    assert "new uploads are refused" not in page
    assert api.create(filename="a.bin", size_bytes=10).status_code == 201

    settings.PORTAL_MIN_FREE_BYTES = max(free(temp), free(final)) + 1
    page = admin_client.get("/status", HTTP_ACCEPT="text/html").content.decode()
    assert "new uploads are refused" in page
    assert api.create(filename="b.bin", size_bytes=10).status_code == 507


def test_status_shows_the_share_of_each_volume_in_use(admin_client, volumes):
    temp, final = volumes
    fill(temp, 200 * KIB)
    html = admin_client.get("/status", HTTP_ACCEPT="text/html").content.decode()
    for volume in (temp, final):
        usage = shutil.disk_usage(volume)
        used = round(100 * (usage.total - usage.free) / usage.total)
        assert f"({used} % used)" in html, used
