"""The upgrade to one file per session on local disk (migration 0008): parts that sessions in
flight kept in files of their own move into their session's file."""

import hashlib
import io
import os
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import F
from django.utils import timezone

from portal import storage
from portal.models import IngestFile, UploadPart, UploadSession
from tests import objects
from tests.api_helpers import Api, make_token, sha256

BEFORE = [("portal", "0007_part_temp_offset")]
AFTER = [("portal", "0008_parts_into_session_files")]
CHUNK = 1000


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.migrate(target)
    return executor.loader.project_state(target).apps


def own_part(apps, session, number, data, recorded_as=None):
    key = storage.new_temp_key(session.pk, number)
    storage.temp_storage().save(key, io.BytesIO(data))
    return apps.get_model("portal", "UploadPart").objects.create(
        session=session,
        part_number=number,
        size_bytes=len(recorded_as or data),
        sha256=hashlib.sha256(recorded_as or data).hexdigest(),
        temp_key=key,
    )


def session_of(apps, user, status):
    file = apps.get_model("portal", "IngestFile").objects.create(
        original_filename="f", size_bytes=3 * CHUNK, uploaded_by_id=user.pk
    )
    return apps.get_model("portal", "UploadSession").objects.create(
        file=file,
        owner_id=user.pk,
        status=status,
        chunk_size_bytes=CHUNK,
        total_size_bytes=3 * CHUNK,
        total_parts=3,
        expires_at=timezone.now() + timedelta(hours=1),
        hashed_parts=1,
        hash_state=b"state",
    )


@pytest.mark.django_db(transaction=True)
def test_parts_of_their_own_move_into_the_session_file_checked(portal_storage, user):
    if not storage.backend().assembles_in_place:
        pytest.skip("local disk only: on S3 parts stay objects of their own")
    apps = migrate(BEFORE)
    active, ended = session_of(apps, user, "in_progress"), session_of(apps, user, "aborted")
    first, second = os.urandom(CHUNK), os.urandom(CHUNK)
    good = own_part(apps, active, 2, second)
    changed = own_part(apps, active, 1, first, recorded_as=os.urandom(CHUNK))
    left = own_part(apps, ended, 1, first)

    apps = migrate(AFTER)

    parts = apps.get_model("portal", "UploadPart").objects
    moved, lost, kept = (parts.get(pk=part.pk) for part in (good, changed, left))
    path = os.path.join(storage.temp_storage().location, moved.temp_key)
    assert moved.temp_key.endswith("-parts") and moved.temp_offset == CHUNK
    with open(path, "rb") as handle:
        handle.seek(CHUNK)
        assert handle.read() == second
    assert not storage.temp_storage().exists(good.temp_key)
    assert (lost.temp_key, lost.temp_offset) == ("", None)  # finalize fails it: part_corrupt
    assert (kept.temp_key, kept.temp_offset) == (left.temp_key, None)  # cleanup's to delete
    row = apps.get_model("portal", "UploadSession").objects.get(pk=active.pk)
    assert (row.hashed_parts, row.hash_state) == (0, None)


@pytest.mark.django_db
def test_a_part_the_old_code_records_after_the_migration_is_still_assembled(
    portal_storage, client, user
):
    """``migrate`` runs while the old code still serves (docs/topology.md): a part it
    records after the migration keeps a file of its own; finalize still stores the file."""
    if not storage.backend().assembles_in_place:
        pytest.skip("local disk only: on S3 parts stay objects of their own")
    data = os.urandom(3 * CHUNK)
    api = Api(client, make_token(user))
    session = api.start(data, CHUNK)
    assert api.put(session["id"], 1, data[:CHUNK]).status_code == 201
    assert api.put(session["id"], 3, data[2 * CHUNK :]).status_code == 201
    old_worker_part(session["id"], 2, data[CHUNK : 2 * CHUNK])

    response = api.finalize(session["id"])

    assert response.status_code in (200, 202), response.content
    file = IngestFile.objects.get()
    assert (file.status, file.sha256) == (IngestFile.Status.STORED, sha256(data))
    assert b"".join(objects.iter_final(file.storage_key)) == data


def old_worker_part(session_id, number, data):
    """A part recorded as the code before migration 0008 did with parts of their own."""
    key = storage.new_temp_key(session_id, number)
    storage.temp_storage().save(key, io.BytesIO(data))
    UploadPart.objects.create(
        session_id=session_id,
        part_number=number,
        size_bytes=len(data),
        sha256=sha256(data),
        temp_key=key,
    )
    UploadSession.objects.filter(pk=session_id).update(
        completed_parts=F("completed_parts") + 1, bytes_received=F("bytes_received") + len(data)
    )


@pytest.mark.django_db(transaction=True)
def test_a_session_being_assembled_keeps_its_parts_files_and_is_finished_later(
    portal_storage, user
):
    """The old code may be reading them while ``migrate`` runs: they stay where they are,
    and the finalize job (new code) stores the file from them once the lease runs out."""
    if not storage.backend().assembles_in_place:
        pytest.skip("local disk only: on S3 parts stay objects of their own")
    apps = migrate(BEFORE)
    session = session_of(apps, user, "finalizing")
    type(session).objects.filter(pk=session.pk).update(
        assembly_lease_until=timezone.now() - timedelta(minutes=1)
    )
    data = os.urandom(3 * CHUNK)
    parts = [own_part(apps, session, n, data[(n - 1) * CHUNK : n * CHUNK]) for n in (1, 2, 3)]

    migrate(AFTER)

    for part in parts:
        row = UploadPart.objects.get(pk=part.pk)
        assert (row.temp_key, row.temp_offset) == (part.temp_key, None)
        assert storage.temp_storage().exists(part.temp_key)
    call_command("portal_finalize")
    file = IngestFile.objects.get()
    assert (file.status, file.sha256) == (IngestFile.Status.STORED, sha256(data))
    assert b"".join(objects.iter_final(file.storage_key)) == data


@pytest.mark.django_db(transaction=True)
def test_a_migration_that_stops_half_way_loses_no_part_it_moved(portal_storage, user):
    """Each part is recorded at its new place before its old file goes (database first,
    then the delete); a migration that ran in one transaction would roll the rows back
    after the files were gone."""
    if not storage.backend().assembles_in_place:
        pytest.skip("local disk only: on S3 parts stay objects of their own")
    apps = migrate(BEFORE)
    session = session_of(apps, user, "in_progress")
    data = os.urandom(CHUNK)
    first = own_part(apps, session, 1, data)
    blocked = own_part(apps, session, 2, data)
    blocked_path = os.path.join(storage.temp_storage().location, blocked.temp_key)
    os.unlink(blocked_path)
    os.mkdir(blocked_path)  # reading it fails (IsADirectoryError): the migration stops

    with pytest.raises(IsADirectoryError):
        migrate(AFTER)

    moved = apps.get_model("portal", "UploadPart").objects.get(pk=first.pk)
    assert moved.temp_offset == 0 and moved.temp_key.endswith("-parts")
    with open(os.path.join(storage.temp_storage().location, moved.temp_key), "rb") as handle:
        assert handle.read(CHUNK) == data
    os.rmdir(blocked_path)
    migrate(AFTER)
    assert apps.get_model("portal", "UploadPart").objects.get(pk=blocked.pk).temp_key == ""
