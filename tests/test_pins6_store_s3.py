"""Pins (weak-pin review 6, storage area): S3's side of the storage adapter, where the
suite's data let a careless change pass: the words an outage is reported in."""

import uuid

import pytest

from portal import storage
from tests.conftest import apply_storage
from tests.s3_proxy import S3Proxy


@pytest.mark.s3
def test_an_s3_outage_is_named_by_its_error_class_alone(settings, data_dir, moto_s3_factory):
    """describe() drops the ": " of an error with no code or reason: logs and results read
    "EndpointConnectionError", not a dangling separator."""
    server = moto_s3_factory()
    apply_storage(settings, "s3", data_dir, s3=server, bucket=server.new_bucket())
    server.stop()
    result = storage.delete_temp(["aa/one"])
    assert result.failed == {"aa/one": "EndpointConnectionError"}
    with pytest.raises(storage.StorageUnavailable) as raised:
        list(storage.iter_temp("aa/one"))
    assert str(raised.value) == "EndpointConnectionError"


NO_SUCH_UPLOAD = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchUpload</Code>'
    b"<Message>The specified upload does not exist.</Message></Error>"
)


@pytest.mark.s3
def test_an_abandoned_multipart_upload_is_aborted_under_its_full_key(settings, data_dir, moto_s3):
    """abort_multipart_upload names the object with the final storage's prefix: S3 aborts
    an upload only under the key it was begun with (moto does not check; the proxy does)."""
    bucket = moto_s3.new_bucket()
    client = moto_s3.client()

    def as_s3_checks(request, _status, _payload):
        aborting = request.command == "DELETE" and "uploadId=" in request.path
        if aborting and request.path.split("?")[0] != f"/{bucket}/final/{key}":
            return 404, NO_SUCH_UPLOAD
        return None

    proxy = S3Proxy(moto_s3.endpoint, as_s3_checks)
    try:
        apply_storage(settings, "s3", data_dir, s3=proxy, bucket=bucket)
        key = storage.new_final_key(uuid.uuid4())
        upload = client.create_multipart_upload(Bucket=bucket, Key=f"final/{key}")["UploadId"]
        storage.backend().abort_multipart_upload(upload, key)
        assert proxy.spoiled == 0
        assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    finally:
        proxy.close()


@pytest.mark.s3
def test_every_part_copy_names_the_object_its_multipart_upload_was_begun_for(
    settings, data_dir, moto_s3
):
    """S3 finds a multipart upload by its id and its key together: a part copied to any
    other key (the source's, say) is NoSuchUpload there. moto looks at the id alone; the
    proxy answers as S3 does, so the file is assembled only if each copy names ``final/``."""
    import hashlib
    import io

    begun = []

    def as_s3_checks(request, _status, _payload):
        path = request.path.split("?")[0]
        if request.command == "POST" and request.path.endswith("?uploads"):
            begun.append(path)
        elif request.command == "PUT" and "uploadId=" in request.path and path != begun[-1]:
            return 404, NO_SUCH_UPLOAD
        return None

    bucket = moto_s3.new_bucket()
    proxy = S3Proxy(moto_s3.endpoint, as_s3_checks)
    try:
        apply_storage(settings, "s3", data_dir, s3=proxy, bucket=bucket)
        settings.PORTAL_S3_COPY_ASSEMBLY = True
        session, bodies = uuid.uuid4(), [b"a" * 5 * 2**20, b"b" * 1000]
        sources = []
        for number, body in enumerate(bodies, 1):
            stored = storage.write_temp_part(
                io.BytesIO(body), session_id=session, part_number=number, max_bytes=len(body)
            )
            sources.append(
                storage.part_source(number, stored.size, stored.sha256, stored.key, None)
            )

        stored = storage.assemble_final(sources, file_id=session)

        assert proxy.spoiled == 0 and begun[-1].startswith(f"/{bucket}/final/")
        assert stored.sha256 == hashlib.sha256(b"".join(bodies)).hexdigest()
    finally:
        proxy.close()
