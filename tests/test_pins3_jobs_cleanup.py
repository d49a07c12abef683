"""Pins for the jobs area, third round (issue #31): what a cleanup step reports when the
temp listing fails, on local files and on moto S3."""

import copy
import os
import uuid

import pytest

from portal.services import cleanup
from tests.conftest import apply_storage

pytestmark = pytest.mark.django_db


def test_a_failing_local_listing_names_the_storage_errors_reason(settings, data_dir):
    """The operator reads why the sweep could not list: the error's text (its
    ``strerror``), not only its class."""
    apply_storage(settings, "local", data_dir)
    os.rmdir(data_dir / "temp")
    os.symlink(data_dir / "nowhere", data_dir / "temp")
    result = cleanup.sweep_temp_storage()
    assert result.failed == 1
    assert result.failures == {
        "(listing)": "StorageRootMissing: storage root is missing (volume not mounted?)"
    }


def test_a_failing_s3_listing_names_the_services_error_code(settings, data_dir, moto_s3):
    """An S3 error has no ``strerror``: its reason is the service's error (here its code and
    message), so the report says what S3 refused."""
    apply_storage(settings, "s3", data_dir, s3=moto_s3, bucket=moto_s3.new_bucket())
    stores = copy.deepcopy(settings.STORAGES)
    stores["portal_temp"]["OPTIONS"]["bucket_name"] = f"portal-gone-{uuid.uuid4().hex[:12]}"
    settings.STORAGES = stores
    result = cleanup.sweep_temp_storage()
    assert result.failed >= 1
    reason = result.failures["(listing)"]
    assert reason.startswith("NoSuchBucket: {'Code': 'NoSuchBucket'"), reason
    assert "The specified bucket does not exist" in reason
