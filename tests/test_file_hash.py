"""The whole-file sha256 saved while the parts arrive where S3 assembles the file: what
uploads in order save, and finalize continuing it instead of reading the parts (parts out
of order: test_file_hash_catch_up.py; the resumable hash itself: test_sha256state.py)."""

import os

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal import storage
from portal.models import UploadPart, UploadSession
from portal.services import filehash
from portal.storage import sha256state
from portal.storage.sha256state import ResumableSha256
from tests.api_helpers import Api, error_code, make_token, sha256
from tests.conftest import apply_storage
from tests.file_hash_helpers import CHUNK, MIB, GetCounter, s3_api, saved


@pytest.fixture
def api(client, user, settings, data_dir, moto_s3):
    return s3_api(client, user, settings, data_dir, moto_s3)


def test_parts_in_order_save_the_file_hash_and_replays_change_nothing(api):
    data = os.urandom(3 * CHUNK - 123)
    parts = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    session = api.start(data, CHUNK)["id"]

    api.put(session, 1, parts[0])
    assert saved(session) == (1, sha256(parts[0]))
    assert api.put(session, 1, parts[0]).status_code == 200  # a replay
    other = bytes(len(parts[0]))
    assert error_code(api.put(session, 1, other)) == "part_conflict"
    assert saved(session) == (1, sha256(parts[0]))
    api.put(session, 2, parts[1])
    api.put(session, 3, parts[2])

    assert saved(session) == (3, sha256(data))


def test_finalize_continues_the_saved_hash_instead_of_reading_the_parts_for_it(api):
    """The saved state is what finalize uses: put one of other bytes in its place, and
    the file is reported with that hash (the parts' own checks still pass)."""
    data = os.urandom(2 * CHUNK + 5)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK)
    decoy = ResumableSha256()
    decoy.update(bytes(len(data)))
    UploadSession.objects.filter(pk=session).update(hash_state=decoy.state())

    response = api.finalize(session)

    assert response.json()["file"]["sha256"] == sha256(bytes(len(data)))


DAMAGES = ["garbage", "corrupt", "another library", "bare struct", "missing", "openssl unavailable"]


@pytest.mark.parametrize("damage", DAMAGES)
def test_without_a_usable_saved_hash_finalize_hashes_the_file_itself(api, monkeypatch, damage):
    """A saved state finalize cannot trust (written by another library, damaged, in no
    format, absent) is not an error: the file is read for its hash instead."""
    data = os.urandom(2 * CHUNK + 5)
    if damage == "openssl unavailable":  # cannot be uninstalled for a test
        monkeypatch.setattr(sha256state, "available", lambda: False)
    session = api.start(data, CHUNK)["id"]
    with monkeypatch.context() as writing:
        if damage == "another library":  # what an upgrade of OpenSSL in between looks like
            writing.setattr(sha256state._library(), "writer", b"LibreSSL 3.8.2 riscv64")
        api.upload(session, data, CHUNK)
    state = bytes(UploadSession.objects.get(pk=session).hash_state or b"")
    if damage == "corrupt":  # one bit of the struct's state words flipped
        state = state[:-100] + bytes([state[-100] ^ 1]) + state[-99:]
        UploadSession.objects.filter(pk=session).update(hash_state=state)
    elif damage == "bare struct":  # SHA256_CTX without format, writer or checksum
        UploadSession.objects.filter(pk=session).update(hash_state=state[-116:-4])
    elif damage == "garbage":
        UploadSession.objects.filter(pk=session).update(hash_state=os.urandom(112))
    elif damage == "missing":  # a session from before the hash was saved
        UploadSession.objects.filter(pk=session).update(hash_state=None, hashed_parts=0)
    elif damage == "another library":
        assert saved(session) == (3, None)  # saved, and not trusted here
    else:
        assert saved(session) == (0, None)

    response = api.finalize(session)

    assert response.json()["file"]["sha256"] == sha256(data)


@pytest.mark.parametrize(
    ("order", "forget_md5", "reads"),
    [
        ([1, 2, 3], False, 0),  # hashed as they came, copies checked by ETag
        ([2, 3, 1], False, 0),  # parts 2 and 3 caught up when part 1 came
        ([2, 1, 3], False, 2),  # nothing caught up: the hash needs parts 2 and 3
        ([1, 2, 3], True, 3),  # parts received without an MD5: each copy read once
    ],
)
def test_s3_finalize_reads_only_what_the_saved_hash_and_the_etags_do_not_cover(
    api, monkeypatch, order, forget_md5, reads
):
    if order == [2, 1, 3]:
        monkeypatch.setattr(filehash, "CATCH_UP_BYTES", 0)
    data = os.urandom(3 * CHUNK - 1)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=order)
    if forget_md5:
        UploadPart.objects.update(md5="")

    with GetCounter() as gets:
        response = api.finalize(session)

    assert response.json()["file"]["sha256"] == sha256(data)
    assert gets.count == reads


def test_s3_a_part_changed_after_it_was_hashed_still_fails_the_session(api, moto_s3):
    data = os.urandom(2 * CHUNK + 1)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK)
    assert saved(session)[0] == 3
    part = UploadPart.objects.get(part_number=2)
    bucket = storage.temp_storage().bucket_name
    moto_s3.client().put_object(Bucket=bucket, Key=f"temp/{part.temp_key}", Body=os.urandom(CHUNK))

    response = api.finalize(session)

    assert (response.status_code, error_code(response)) == (410, "part_corrupt")
    assert "part 2" in UploadSession.objects.get().failure_reason


def test_a_part_that_breaks_off_or_runs_long_saves_nothing_and_its_retry_does(api, user):
    import io

    from portal.services import chunks
    from portal.services.errors import BadRequest, TooLarge

    data = os.urandom(2 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    with pytest.raises(BadRequest):  # the body ends early, no error from the stream
        chunks.receive_part(user, session, 1, io.BytesIO(data[: CHUNK // 2]), str(CHUNK))
    with pytest.raises(TooLarge):  # more bytes than Content-Length said
        chunks.receive_part(user, session, 1, io.BytesIO(data[:CHUNK] + b"!"), str(CHUNK))
    assert saved(session) == (0, None)

    api.upload(session, data, CHUNK)
    assert saved(session) == (2, sha256(data))


def test_a_part_missing_from_s3_fails_the_session_though_nothing_is_read(api, moto_s3):
    """All hashed on arrival: finalize reads nothing, so a temp object that is gone shows
    as a failed copy, and that is a corrupt part (410), not an outage to retry forever."""
    data = os.urandom(2 * CHUNK + 1)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK)
    part = UploadPart.objects.get(part_number=2)
    storage.delete_temp([part.temp_key])

    response = api.finalize(session)

    assert (response.status_code, error_code(response)) == (410, "part_corrupt")
    row = UploadSession.objects.get()
    assert row.status == "failed" and "part 2 is missing" in row.failure_reason
    bucket = storage.final_storage().bucket_name
    assert moto_s3.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_s3_assembly_reports_progress_after_every_part_it_reads_or_copies(api, monkeypatch):
    """Progress is also the assembly's lease: it must come after each part, even while
    parts the saved hash covers are read because their ETags did not match."""
    from portal.services.finalize.assembly import _sources, part_rows

    monkeypatch.setattr(filehash, "CATCH_UP_BYTES", 0)
    data = os.urandom(4 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=[1, 2, 4, 3])  # 4 came early: hashed through 3
    UploadPart.objects.update(md5="")  # every copy is checked by reading it
    row = UploadSession.objects.get(pk=session)
    file_hash, hashed = filehash.for_assembly(row)
    assert hashed == 3
    reported = []

    stored = storage.assemble_final(
        _sources(part_rows(session)),
        file_id=row.file_id,
        progress=reported.append,
        file_hash=file_hash,
        hashed=hashed,
    )

    assert stored.sha256 == sha256(data)
    assert len(reported) == 1 + 4  # part 4 read for the hash, then four copies read
    assert reported == sorted(reported) and reported[-1] == len(data)


@pytest.mark.parametrize("where", ["small parts", "copy off"])
def test_where_the_worker_assembles_nothing_is_saved(
    client, user, settings, data_dir, moto_s3, where
):
    """Parts S3 cannot copy, or copying turned off: finalize reads the parts anyway, so no
    hash state or MD5 is kept while they arrive."""
    apply_storage(settings, "s3", data_dir, s3=moto_s3, bucket=moto_s3.new_bucket())
    settings.PORTAL_CHUNK_SIZE_MAX = 16 * MIB
    settings.PORTAL_S3_COPY_ASSEMBLY = where != "copy off"
    chunk = 64 * 1024 if where == "small parts" else CHUNK
    data = os.urandom(2 * chunk + 3)
    api = Api(client, make_token(user))
    session = api.start(data, chunk)["id"]
    with CaptureQueriesContext(connection) as queries:
        api.upload(session, data, chunk, order=[2, 1, 3])

    assert saved(session) == (0, None)
    catch_up = [q for q in queries.captured_queries if "hash_claimed_until" in q["sql"]]
    assert catch_up == []  # nothing to catch up: no look, no claim
    assert set(UploadPart.objects.values_list("md5", flat=True)) == {""}
    assert api.finalize(session).json()["file"]["sha256"] == sha256(data)
