"""S3 through django-storages: one boto3 client per process, shared by every thread."""

import io
import os
import threading

import pytest

from portal import storage

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
