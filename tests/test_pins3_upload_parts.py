"""Pins for the part API (issue #31, the upload area, third round): what a refused part
tells the client."""

import pytest

from portal.models import UploadPart
from tests.api_helpers import Api, make_token


@pytest.fixture
def api(client, user, portal_storage):
    return Api(client, make_token(user))


@pytest.mark.parametrize("number", [0, 4])
def test_a_part_number_out_of_range_is_400_naming_the_range(api, number):
    """The message says which numbers the session takes (3 parts: 1 to 3)."""
    session = api.start(b"x" * 25, 10)["id"]
    response = api.put(session, number, b"x" * 5)
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid_part_number",
            "message": "part_number must be between 1 and 3",
        }
    }
    assert not UploadPart.objects.exists()


@pytest.mark.parametrize(
    ("length", "status", "code"), [(4, 400, "part_size_mismatch"), (6, 413, "part_too_large")]
)
def test_a_content_length_other_than_the_parts_size_names_both(api, length, status, code):
    """The last part of 25 bytes in parts of 10 is 5 bytes: the message says so and what
    the request declared, before a byte is read."""
    session = api.start(b"x" * 25, 10)["id"]
    response = api.put(session, 3, b"x" * length)
    assert response.status_code == status
    assert response.json() == {
        "error": {"code": code, "message": f"part 3 must be 5 bytes, Content-Length says {length}"}
    }
    assert not UploadPart.objects.exists()
