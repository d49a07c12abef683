"""``portal.health.lanes.lane_for`` on ``Content-Length`` values the first pins left out:
an empty value announces no body (the usual pool), spaces around a number are not part
of it, and a tus request with a body still takes its lane."""

import pytest

from portal.health.lanes import TUS_LANE, TUS_PREFIX, lane_for

UPLOAD = f"{TUS_PREFIX}0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


@pytest.mark.parametrize("value", ["", " ", "0", "  0  ", "\t0"])
def test_a_tus_request_whose_length_is_empty_or_zero_takes_the_usual_pool(value):
    """No body announced: the request is short and must not wait behind uploads for a
    tus-lane thread (an empty ``Content-Length`` is no body either)."""
    head = f"PATCH {UPLOAD} HTTP/1.1\r\nHost: x\r\nContent-Length:{value}\r\n\r\n".encode()
    assert lane_for(head) is None


@pytest.mark.parametrize("value", ["1", " 10 ", "5242880"])
def test_a_tus_request_with_a_length_takes_the_tus_lane(value):
    """Any other length is a body: the upload streams on a tus-lane thread."""
    head = f"PATCH {UPLOAD} HTTP/1.1\r\nHost: x\r\ncontent-length: {value}\r\n\r\n".encode()
    assert lane_for(head) == TUS_LANE
