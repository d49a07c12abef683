"""tus PATCH pinned where careless slips survived (weak-pin review 6): why a body continuing
a tail broke off, an upload that expired while its tail-only body arrived, a stream longer
than the announced length."""

import io

import time_machine

from portal.models import TusUpload
from portal.services.tus_patch import receive_patch
from tests import objects
from tests.api_helpers import error_code
from tests.tus_helpers import Breaking, patch_breaking, stored_file_bytes


def test_a_body_continuing_a_tail_that_breaks_off_says_why(tus):
    """The tail's part is read, not read into: its message must still name the failure."""
    data = bytes(range(30))
    path = tus.start(len(data))
    assert tus.patch(path, 0, data[:3]).status_code == 204  # a tail of part 1
    response = patch_breaking(tus, path, 3, Breaking(data[3:6], TimeoutError("slow")), 20)
    assert (response.status_code, error_code(response)) == (400, "incomplete_body")
    assert "(UnreadablePostError)" in response.json()["error"]["message"]
    assert response["Upload-Offset"] == "6"


class Slow:
    """A body whose bytes arrive once the clock moved to ``until``."""

    def __init__(self, data, traveller, until):
        self.data, self.traveller, self.until = data, traveller, until

    def read(self, size=-1):
        self.traveller.move_to(self.until)
        data, self.data = self.data[:size], self.data[size:]
        return data

    readline = read


def test_an_upload_that_expires_while_a_tail_arrives_is_410_and_keeps_nothing(tus, settings):
    """An expired upload stays expired: a late tail must not reopen it for another TTL."""
    settings.PORTAL_SESSION_TTL_HOURS = 1
    with time_machine.travel("2030-01-01 10:00:00Z", tick=False) as traveller:
        path = tus.start(20)
        traveller.move_to("2030-01-01 10:59:00Z")
        body = Slow(b"abcd", traveller, "2030-01-01 11:01:00Z")
        response = patch_breaking(tus, path, 0, body, 4)
        assert (response.status_code, error_code(response)) == (410, "session_expired")
        tail = TusUpload.objects.get()
        assert (tail.tail_key, tail.tail_bytes) == ("", 0)
        assert list(objects.own_temp_keys()) == []


def test_receive_patch_takes_only_the_announced_bytes_of_a_longer_stream(tus, user):
    """A stream holding more than ``length`` (a proxy's read-ahead) must not leak into the file."""
    path = tus.start(20)
    upload = path.rsplit("/", 1)[1]
    stream = io.BytesIO(b"abcdEXTRA-BYTES")
    result = receive_patch(user, upload, offset=0, length=4, stream=stream)
    assert (result.offset, result.broken) == (4, "")
    assert tus.offset(path) == 4
    assert tus.patch(path, 4, b"efghijklmnopqrst").status_code == 204
    assert stored_file_bytes() == b"abcdefghijklmnopqrst"
