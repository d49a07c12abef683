"""S3 through django-storages: one boto3 client per process, shared by every thread."""

import io
import os
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from portal import storage
from tests import objects
from tests.conftest import apply_storage
from tests.s3_proxy import S3Proxy

SESSION = "0f0e0d0c-0b0a-0908-0706-050403020100"
MIB = 1024 * 1024


@pytest.mark.s3
def test_s3_threads_share_one_client_each_with_a_resource_of_its_own(settings, data_dir, moto_s3):
    """One boto3 client per process (its S3 model loaded once, not ~12 MB per thread and
    storage); a resource per thread (boto3 resources are not thread-safe); objects
    written from several threads all land."""
    from django.core.files.storage import storages

    from tests.conftest import apply_storage

    apply_storage(settings, "s3", data_dir, s3=moto_s3, bucket=moto_s3.new_bucket())
    temp = storages["portal_temp"]
    seen, written = [], []

    def upload(number):
        seen.append((temp.connection, temp.connection.meta.client))  # kept alive: ids stay unique
        stored = storage.write_temp_part(
            io.BytesIO(b"x" * number), session_id=SESSION, part_number=number, max_bytes=100
        )
        written.append(stored.size)

    threads = [threading.Thread(target=upload, args=(number,)) for number in range(1, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    clients = {id(client) for _, client in seen}
    resources = {id(resource) for resource, _ in seen}
    assert len(seen) == 6 and len(clients) == 1 and len(resources) == 6
    assert sorted(written) == [1, 2, 3, 4, 5, 6]
    assert len(list(storage.list_temp())) == 6


@pytest.mark.s3
def test_s3_a_forked_child_builds_a_client_of_its_own(settings, data_dir, moto_s3):
    """A client inherited over fork shares its connection pool's sockets with the parent:
    the child must not use it."""
    from django.core.files.storage import storages

    from tests.conftest import apply_storage

    apply_storage(settings, "s3", data_dir, s3=moto_s3, bucket=moto_s3.new_bucket())
    temp = storages["portal_temp"]
    inherited = temp.connection.meta.client
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        answer = b"own" if temp.connection.meta.client is not inherited else b"inherited"
        os.write(write_end, answer)
        os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 16)
    os.waitpid(pid, 0)
    assert answer == b"own"
    assert temp.connection.meta.client is inherited


@pytest.mark.s3
def test_s3_a_part_of_8_mib_is_one_put_and_a_larger_one_multipart(settings, data_dir, moto_s3):
    """The default part size in one request (a multipart upload of one part takes three);
    above it, multipart in 8 MiB chunks keeps the memory bounded."""
    from tests.conftest import apply_storage

    bucket = moto_s3.new_bucket()
    apply_storage(settings, "s3", data_dir, s3=moto_s3, bucket=bucket)
    etags = {}
    for number, size in ((1, 8 * MIB), (2, 16 * MIB + 1)):
        stored = storage.write_temp_part(
            io.BytesIO(os.urandom(size)), session_id=SESSION, part_number=number, max_bytes=size
        )
        head = moto_s3.client().head_object(Bucket=bucket, Key=f"temp/{stored.key}")
        assert head["ContentLength"] == size
        etags[number] = head["ETag"].strip('"')
    assert "-" not in etags[1]
    assert etags[2].endswith("-3")


class CompletionFaultProxy(S3Proxy):
    """Spoils CompleteMultipartUpload. ``lost`` forwards the first and closes the connection
    without its answer, ``error`` forwards the first and answers 500; a completion sent
    again then gets what S3 answers once an upload is complete, 404 NoSuchUpload.
    ``refused`` answers every one 500 and forwards none."""

    NO_SUCH_UPLOAD = (404, b"<Error><Code>NoSuchUpload</Code></Error>")
    INTERNAL_ERROR = (500, b"<Error><Code>InternalError</Code></Error>")

    def __init__(self, upstream, fault):
        self.fault = fault
        self.completions = 0
        super().__init__(upstream)

    def answer(self, request, forward):
        completion = request.command == "POST" and "uploadId=" in request.path
        self.completions += completion
        if not completion:
            return forward()
        if self.fault == "refused" or self.completions > 1:
            status, payload = (
                self.INTERNAL_ERROR if self.fault == "refused" else self.NO_SUCH_UPLOAD
            )
            return status, [], payload
        forward()
        if self.fault == "lost":
            return None
        return self.INTERNAL_ERROR[0], [], self.INTERNAL_ERROR[1]


@pytest.mark.s3
@pytest.mark.parametrize("fault", ["lost", "error", "refused", "refused over another"])
def test_s3_a_completed_assembly_whose_answer_is_lost_is_stored_once(
    settings, data_dir, moto_s3, fault
):
    """A CompleteMultipartUpload that succeeded but whose answer never came (a read
    timeout, then a retry that S3 answers NoSuchUpload) is a stored file, checked by the
    ETag S3 gives those parts; one that did not succeed still fails and leaves nothing."""
    import hashlib

    from tests.conftest import apply_storage

    bucket = moto_s3.new_bucket()
    proxy = CompletionFaultProxy(moto_s3.endpoint, fault.split()[0])
    final_key = f"final/{storage.new_final_key(SESSION)}"
    if fault == "refused over another":  # an object of an earlier attempt at the name
        moto_s3.client().put_object(Bucket=bucket, Key=final_key, Body=b"an earlier object")
    try:
        apply_storage(settings, "s3", data_dir, s3=proxy, bucket=bucket)
        settings.PORTAL_S3_COPY_ASSEMBLY = True
        chunks = [os.urandom(5 * MIB), os.urandom(1000)]
        sources = []
        for number, chunk in enumerate(chunks, 1):
            stored = storage.write_temp_part(
                io.BytesIO(chunk), session_id=SESSION, part_number=number, max_bytes=len(chunk)
            )
            sources.append(storage.Source(stored.key, stored.size, stored.sha256, f"part {number}"))
        if fault.startswith("refused"):  # not taken for done, whatever is at the name
            with pytest.raises(storage.StorageUnavailable):
                storage.assemble_final(sources, file_id=SESSION)
            final = moto_s3.client().list_objects_v2(Bucket=bucket, Prefix="final/")
            assert final.get("KeyCount") == (0 if fault == "refused" else 1)
        else:
            assembled = storage.assemble_final(sources, file_id=SESSION)
            body = moto_s3.client().get_object(Bucket=bucket, Key=f"final/{assembled.key}")
            assert body["Body"].read() == b"".join(chunks)
            assert assembled.sha256 == hashlib.sha256(b"".join(chunks)).hexdigest()
        assert proxy.completions >= 1
    finally:
        proxy.close()


@pytest.mark.s3
def test_s3_copies_parts_within_its_multipart_rules_only(settings, data_dir, moto_s3):
    """UploadPartCopy: at most 10,000 parts, each but the last at least 5 MiB; a file of
    one part is copied whatever its size. Outside them the parts stream through."""
    from tests.conftest import apply_storage

    apply_storage(settings, "s3", data_dir, s3=moto_s3, bucket=moto_s3.new_bucket())
    settings.PORTAL_S3_COPY_ASSEMBLY = True
    backend = storage.backend()
    assert backend.copies_parts(5 * MIB, 10_000)
    assert not backend.copies_parts(5 * MIB, 10_001)
    assert not backend.copies_parts(5 * MIB - 1, 2)
    assert backend.copies_parts(1, 1)
    settings.PORTAL_S3_COPY_ASSEMBLY = False
    assert not storage.backend().copies_parts(5 * MIB, 2)


# Pins of issue #31 (tests/mutant_area_store.py): keys, listings, uploads left, errors.
FILE = uuid.UUID("f11e0000-0000-4000-8000-000000000002")
NOW = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)


@pytest.fixture
def s3(settings, data_dir, moto_s3):
    bucket = moto_s3.new_bucket()
    apply_storage(settings, "s3", data_dir, s3=moto_s3, bucket=bucket)
    return moto_s3.client(), bucket


@pytest.mark.s3
def test_an_s3_delete_failure_names_the_s3_error_code(settings, data_dir, moto_s3):
    apply_storage(settings, "s3", data_dir, s3=moto_s3, bucket="store-no-such-bucket")
    result = storage.delete_temp(["aa/one", "bb/two"])
    assert result.deleted == []
    assert result.failed == dict.fromkeys(["aa/one", "bb/two"], "NoSuchBucket: NoSuchBucket")


@pytest.mark.s3
def test_s3_copies_parts_whose_last_one_is_short(s3, settings):
    settings.PORTAL_S3_COPY_ASSEMBLY = True
    chunks = [os.urandom(5 * MIB), os.urandom(10)]
    sources = []
    for number, chunk in enumerate(chunks, 1):
        stored = storage.write_temp_part(
            io.BytesIO(chunk),
            session_id=SESSION,
            part_number=number,
            max_bytes=len(chunk),
            for_copy=True,
        )
        sources.append(
            storage.part_source(number, len(chunk), stored.sha256, stored.key, None, md5=stored.md5)
        )
    uploads = []
    obj = storage.assemble_final(sources, file_id=FILE, on_upload=uploads.append)
    assert len(uploads) == 1
    assert b"".join(objects.iter_final(obj.key)) == b"".join(chunks)


@pytest.mark.s3
def test_s3_lists_keys_without_the_location_prefix(s3):
    client, bucket = s3
    key = storage.write_temp_part(
        io.BytesIO(b"x"), session_id=SESSION, part_number=1, max_bytes=1
    ).key
    assert [item.key for item in storage.list_temp()] == [key]
    assert client.list_objects_v2(Bucket=bucket)["Contents"][0]["Key"] == f"temp/{key}"


@pytest.mark.s3
def test_s3_stale_multipart_uploads_are_those_begun_before_the_cut(s3):
    client, bucket = s3
    key = storage.new_final_key(FILE, now=NOW)
    upload = client.create_multipart_upload(Bucket=bucket, Key=f"final/{key}")["UploadId"]
    backend = storage.backend()
    try:
        later = datetime.now(UTC) + timedelta(minutes=5)
        assert list(backend.stale_multipart_uploads(older_than=later)) == [(key, upload)]
        earlier = datetime(2010, 1, 1, tzinfo=UTC)  # moto says every upload began in 2010
        assert list(backend.stale_multipart_uploads(older_than=earlier)) == []
    finally:
        backend.abort_multipart_upload(upload, key)
    assert list(backend.stale_multipart_uploads(older_than=later)) == []


@pytest.mark.s3
def test_s3_a_missing_part_is_reported_missing_not_changed(s3, settings):
    settings.PORTAL_S3_COPY_ASSEMBLY = False
    sources = []
    for number, chunk in enumerate([b"abc", b"def"], 1):
        stored = storage.write_temp_part(
            io.BytesIO(chunk), session_id=SESSION, part_number=number, max_bytes=3
        )
        sources.append(storage.part_source(number, 3, stored.sha256, stored.key, None))
    storage.delete_temp([sources[1].key])
    with pytest.raises(storage.SourceMismatch) as failure:
        storage.assemble_final(sources, file_id=FILE)
    assert str(failure.value) == "part 2 is missing from temp storage"
    with pytest.raises(FileNotFoundError):
        b"".join(storage.iter_temp(sources[1].key))
