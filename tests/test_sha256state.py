"""The resumable SHA-256 (OpenSSL's SHA256_CTX through ctypes): saved and resumed
anywhere, fed any buffer, and a saved state that does not fit refused."""

import hashlib
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.storage import sha256state
from portal.storage.sha256state import ResumableSha256

MIB = 1024 * 1024


@given(st.binary(max_size=3000), st.lists(st.integers(0, 3000), max_size=6))
def test_a_state_saved_anywhere_resumes_to_hashlibs_digest(data, cuts):
    digest, done = ResumableSha256(), 0
    for cut in sorted(min(cut, len(data)) for cut in cuts):
        digest.update(data[done:cut])
        digest = ResumableSha256.resume(digest.state(), cut)
        done = cut
    digest.update(bytearray(data[done:]))
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert digest.length == len(data)


def test_it_takes_bytes_writable_views_and_read_only_views():
    data = os.urandom(3 * MIB + 7)
    digest = ResumableSha256()
    digest.update(memoryview(bytearray(data[:MIB])))  # no copy
    digest.update(memoryview(data)[MIB : 2 * MIB])  # read-only: copied first
    digest.update(data[2 * MIB :])
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_a_digest_leaves_the_hash_as_it_was_like_hashlibs(head, tail):
    """``hexdigest()`` may be asked any number of times, and the hash goes on after it:
    its state, its length and later updates are those of a hash never asked."""
    digest = ResumableSha256()
    digest.update(head)
    before = digest.state()

    assert digest.hexdigest() == digest.hexdigest() == hashlib.sha256(head).hexdigest()
    assert (digest.state(), digest.length) == (before, len(head))
    assert ResumableSha256.resume(digest.state(), len(head)) is not None
    digest.update(tail)
    assert digest.hexdigest() == hashlib.sha256(head + tail).hexdigest()


@pytest.mark.parametrize(
    "damage",
    ["none", "short", "long", "other count", "zeroed", "garbage"],
)
def test_a_state_that_does_not_fit_its_byte_count_is_refused(damage):
    digest = ResumableSha256()
    digest.update(b"x" * 1000)
    state = {
        "none": None,
        "short": digest.state()[:-1],
        "long": digest.state() + b"\0",
        "other count": digest.state(),
        "zeroed": bytes(sha256state.STATE_BYTES),
        "garbage": os.urandom(sha256state.STATE_BYTES),
    }[damage]
    assert ResumableSha256.resume(state, 999 if damage == "other count" else 1000) is None
    assert ResumableSha256.resume(digest.state(), 1000) is not None
