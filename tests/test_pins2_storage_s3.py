"""The S3 storage (moto server) survives a pickle round trip, as django-storages' own does
(a storage held by a model field is deep-copied, a job may be handed one): the copy sees
and deletes in the same bucket, through a client built at its first use, after the
original's shared one was built. (Its reads and writes through boto3's transfer manager
fail after a pickle whatever the portal does: boto3's ``TransferConfig`` does not survive
one.)"""

import copy
import io
import pickle

import pytest
from django.core.files.storage import storages

from portal import storage
from tests.conftest import apply_storage
from tests.s3_proxy import S3Proxy

SESSION = "0f0e0d0c-0b0a-0908-0706-050403020100"


@pytest.fixture
def s3(settings, data_dir, moto_s3):
    apply_storage(settings, "s3", data_dir, s3=moto_s3, bucket=moto_s3.new_bucket())


@pytest.mark.s3
@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_an_s3_storage_in_use_survives_a_round_trip(s3, how):
    temp = storages["portal_temp"]
    stored = storage.write_temp_part(
        io.BytesIO(b"kept"), session_id=SESSION, part_number=1, max_bytes=10
    )  # the shared client is built and in use

    clone = pickle.loads(pickle.dumps(temp)) if how == "pickle" else copy.deepcopy(temp)

    assert clone.exists(stored.key) and clone.size(stored.key) == 4
    clone.delete(stored.key)
    assert not temp.exists(stored.key)
    assert (clone.bucket_name, clone.location) == (temp.bucket_name, temp.location)


@pytest.mark.s3
@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_an_s3_storage_never_used_survives_a_round_trip(s3, how):
    """A storage copied before its first request (settings deep-copied at start-up, a
    job handed one) has no client of this process yet: the copy works all the same."""
    temp = storages["portal_temp"]

    clone = pickle.loads(pickle.dumps(temp)) if how == "pickle" else copy.deepcopy(temp)

    assert not clone.exists("never/written")
    assert (clone.bucket_name, clone.location) == (temp.bucket_name, temp.location)


@pytest.mark.s3
@pytest.mark.parametrize("what", ["temp part", "final object"])
def test_an_object_s3_stored_but_answered_as_failed_is_removed(settings, data_dir, moto_s3, what):
    """``save``'s promise, nothing left on failure, holds when S3 kept the bytes and its
    answer was an error: the portal deletes the key it was writing."""

    def stored_then_failed(request, status, payload):
        if request.command == "PUT" and status == 200:
            return 500, b"<Error><Code>InternalError</Code></Error>"
        return None

    bucket = moto_s3.new_bucket()
    proxy = S3Proxy(moto_s3.endpoint, stored_then_failed)
    try:
        apply_storage(settings, "s3", data_dir, s3=proxy, bucket=bucket)
        with pytest.raises(storage.StorageUnavailable):
            if what == "temp part":
                storage.write_temp_part(
                    io.BytesIO(b"p" * 1000), session_id=SESSION, part_number=1, max_bytes=1000
                )
            else:
                storage.write_final([b"f" * 1000], file_id=SESSION)
        assert proxy.spoiled >= 1
        assert moto_s3.client().list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    finally:
        proxy.close()


@pytest.mark.s3
@pytest.mark.parametrize(
    "answer",
    [
        (404, b"<Error><Code>NoSuchKey</Code></Error>"),  # S3
        (404, b""),  # an emulator's bare 404: botocore's code is "404"
        (404, b"<Error><Code>NotFound</Code></Error>"),
    ],
    ids=["NoSuchKey", "bare 404", "NotFound"],
)
def test_a_part_copy_of_a_missing_part_is_a_missing_part_whatever_the_404_says(
    settings, data_dir, moto_s3, answer
):
    """UploadPartCopy of a temp object that is gone: ``SourceMismatch`` naming the part as
    missing (finalize's 409 for the client), not a storage outage (503)."""
    import hashlib

    def missing_copy(request, status, payload):
        if request.command == "PUT" and request.headers.get("x-amz-copy-source"):
            return answer
        return None

    bucket = moto_s3.new_bucket()
    proxy = S3Proxy(moto_s3.endpoint, missing_copy)
    try:
        apply_storage(settings, "s3", data_dir, s3=proxy, bucket=bucket)
        settings.PORTAL_S3_COPY_ASSEMBLY = True
        body = b"q" * 1000
        stored = storage.write_temp_part(
            io.BytesIO(body), session_id=SESSION, part_number=1, max_bytes=len(body)
        )
        source = storage.part_source(1, stored.size, stored.sha256, stored.key, None)
        covered = hashlib.sha256(body)  # the saved hash covers the part: it is not read

        with pytest.raises(storage.SourceMismatch) as caught:
            storage.assemble_final([source], file_id=SESSION, file_hash=covered, hashed=1)

        assert str(caught.value) == "part 1 is missing from temp storage"
        assert proxy.spoiled == 1
        final = moto_s3.client().list_objects_v2(Bucket=bucket, Prefix="final/")
        assert final.get("KeyCount") == 0
    finally:
        proxy.close()


@pytest.mark.s3
def test_keys_s3_refuses_to_delete_are_failed_and_missing_ones_deleted(settings, data_dir, moto_s3):
    """DeleteObjects answers per key: AccessDenied fails that key (with S3's code and
    message), NoSuchKey counts as deleted, the rest are deleted."""

    def per_key_errors(request, status, payload):
        if request.command == "POST" and "delete" in request.path:
            return 200, (
                b'<?xml version="1.0" encoding="UTF-8"?>'
                b'<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                b"<Error><Key>temp/aa/refused</Key><Code>AccessDenied</Code>"
                b"<Message>Access Denied</Message></Error>"
                b"<Error><Key>temp/aa/gone</Key><Code>NoSuchKey</Code>"
                b"<Message>missing</Message></Error>"
                b"</DeleteResult>"
            )
        return None

    bucket = moto_s3.new_bucket()
    proxy = S3Proxy(moto_s3.endpoint, per_key_errors)
    try:
        apply_storage(settings, "s3", data_dir, s3=proxy, bucket=bucket)
        result = storage.delete_temp(["aa/refused", "aa/gone", "aa/fine"])
    finally:
        proxy.close()

    assert result.failed == {"aa/refused": "AccessDenied: Access Denied"}
    assert sorted(result.deleted) == ["aa/fine", "aa/gone"]
    assert result.requests == 1
