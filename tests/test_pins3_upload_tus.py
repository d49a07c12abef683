"""Pins for tus (issue #31, the upload area, third round): the file's sha256 carried from
one PATCH to the next."""

import pytest

from portal.models import TusUpload
from portal.storage import sha256state
from tests.api_helpers import sha256
from tests.tus_helpers import metadata, stored_file_bytes


@pytest.mark.skipif(not sha256state.available(), reason="hash states cannot be saved here")
def test_a_file_sha256_checked_over_three_patches_resumes_the_saved_hash(tus):
    """Each PATCH goes on from the hash state the one before saved (a tail and whole
    parts): the last one's check sees the whole file's sha256 and stores it."""
    data = bytes(range(256)) * 2 + b"end"
    path = tus.start(len(data), **{"Upload-Metadata": metadata(sha256=sha256(data))})
    assert tus.patch(path, 0, data[:15]).status_code == 204
    assert TusUpload.objects.get().hashed_bytes == 15
    assert tus.patch(path, 15, data[15:300]).status_code == 204
    assert TusUpload.objects.get().hashed_bytes == 300

    response = tus.patch(path, 300, data[300:])

    assert response.status_code == 204, response.content
    assert stored_file_bytes() == data
