"""Pins for tus (issue #31, the upload area): what a refused tus request says, and an
``Upload-Checksum`` that is not strict base64."""

import base64
import hashlib

import pytest

from portal.models import UploadPart
from tests.api_helpers import error_code, make_token
from tests.tus_helpers import TUS, Tus

CHUNK = 10


@pytest.fixture
def tus(client, user, portal_storage, settings):
    settings.PORTAL_CHUNK_SIZE = CHUNK
    return Tus(client, make_token(user))


@pytest.mark.parametrize("version, got", [(None, "None"), ("2.0.0", "'2.0.0'")])
def test_another_tus_version_is_412_naming_the_one_spoken(client, user, version, got):
    headers = {"Authorization": f"Bearer {make_token(user)}", "Upload-Length": "5"}
    if version:
        headers["Tus-Resumable"] = version
    response = client.post(TUS, headers=headers)
    assert response.status_code == 412
    assert response.json() == {
        "error": {
            "code": "tus_version_unsupported",
            "message": f"send Tus-Resumable: 1.0.0 (got {got}); this server speaks only that",
        }
    }


@pytest.mark.parametrize("damage", ["!", " x", "=="])
def test_an_upload_checksum_that_is_not_strict_base64_is_400(tus, damage):
    """A digest with characters outside base64 (which a lax decoder would skip) is refused
    before a byte of the PATCH is kept."""
    body = b"0123456789abc"
    encoded = base64.b64encode(hashlib.sha1(body).digest()).decode()
    header = f"sha1 {encoded[:8]}{damage}{encoded[8:]}"
    path = tus.start(len(body))
    response = tus.patch(path, 0, body, **{"Upload-Checksum": header})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid_upload_checksum",
        "message": "Upload-Checksum must be 'sha1 <base64 of the 20-byte digest>'",
    }
    assert tus.offset(path) == 0
    assert not UploadPart.objects.exists()
    good = tus.patch(path, 0, body, **{"Upload-Checksum": f"sha1 {encoded}"})
    assert good.status_code == 204
