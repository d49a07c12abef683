"""Pins (weak-pin review 6, storage area): S3's side of the storage adapter, where the
suite's data let a careless change pass: the words an outage is reported in."""

import pytest

from portal import storage
from tests.conftest import apply_storage


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
