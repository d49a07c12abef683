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
