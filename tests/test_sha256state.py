"""The resumable SHA-256 (OpenSSL's SHA256_CTX through ctypes): saved and resumed
anywhere, fed any buffer, and a saved state it cannot trust refused."""

import hashlib
import os
import subprocess
import sys
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.storage import sha256state
from portal.storage.sha256state import ResumableSha256
from tests.conftest import PYTHON, ROOT

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


def restated(state, *, fmt=None, writer=None):
    """``state`` with another format number or writer, its checksum made to match."""
    writer_length = state[1]
    fmt = state[0] if fmt is None else fmt
    writer = state[2 : 2 + writer_length] if writer is None else writer
    body = bytes((fmt, len(writer))) + writer + state[2 + writer_length : -4]
    return body + zlib.crc32(body).to_bytes(4, "big")


def with_pending(state, pending):
    """``state`` whose struct says ``pending`` bytes wait in its last block."""
    start = 2 + state[1] + sha256state._MD_LEN_OFFSET - 4
    return state[:start] + pending.to_bytes(4, sys.byteorder) + state[start + 4 :]


@pytest.mark.parametrize(
    "damage",
    [
        "none",
        "short",
        "long",
        "other count",
        "zeroed",
        "garbage",
        "bit flipped",
        "bare struct",
        "other format",
        "other library",
        "other machine",
        "fields disagree",
    ],
)
def test_a_state_not_trusted_is_refused(damage):
    """Refused: a state that does not fit its byte count, fails its checksum, predates the
    format, or was written by another format, library or machine (whose struct may differ)."""
    digest = ResumableSha256()
    digest.update(b"x" * 1000)
    state = digest.state()
    writer = sha256state._library().writer
    damaged = {
        "none": None,
        "short": state[:-1],
        "long": state + b"\0",
        "other count": state,
        "zeroed": bytes(len(state)),
        "garbage": os.urandom(len(state)),
        "bit flipped": state[:60] + bytes([state[60] ^ 4]) + state[61:],
        "bare struct": state[-4 - sha256state.STATE_BYTES : -4],
        "other format": restated(state, fmt=sha256state.FORMAT + 1),
        "other library": restated(state, writer=b"OpenSSL 1.1.1w 11 Sep 2023 x86_64"),
        "other machine": restated(state, writer=writer.rpartition(b" ")[0] + b" s390x"),
        # the bit count right, the bytes pending in the last block not (a struct laid out
        # otherwise under the same name): checksummed as if written so
        "fields disagree": restated(with_pending(state, 1000 % 64 + 1)),
    }[damage]
    assert ResumableSha256.resume(damaged, 999 if damage == "other count" else 1000) is None
    assert ResumableSha256.resume(restated(state), 1000).hexdigest() == digest.hexdigest()


def test_the_library_is_looked_up_at_first_use_and_its_absence_is_no_error():
    """Nothing is loaded at import (OpenSSL without the deprecated SHA256_* functions, as in
    a ``no-deprecated`` build, must not stop the portal): ``available()`` says False,
    and ``resume`` refuses every state, so callers hash with hashlib instead."""
    script = (
        "import ctypes\n"
        "class NoSha256(ctypes.CDLL):\n"
        "    def __getattr__(self, name):\n"
        "        if name.startswith('SHA256_'):\n"
        "            raise AttributeError(name)\n"
        "        return super().__getattr__(name)\n"
        "from portal.storage import sha256state\n"
        "assert sha256state._library.cache_info().currsize == 0\n"
        "ctypes.CDLL = NoSha256\n"
        "print(sha256state.available(), sha256state.ResumableSha256.resume(b'x' * 138, 0))\n"
    )
    result = subprocess.run(
        [PYTHON, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "None"]


def test_a_strided_view_is_hashed_as_its_bytes():
    digest = ResumableSha256()
    digest.update(memoryview(bytearray(b"abcdef"))[::2])
    assert digest.hexdigest() == hashlib.sha256(b"ace").hexdigest()


def test_a_state_resumes_only_for_the_length_it_was_saved_at():
    digest = ResumableSha256()
    digest.update(b"x" * 100)
    state = digest.state()
    assert ResumableSha256.resume(state, 164) is None
    assert ResumableSha256.resume(state, 36) is None
    resumed = ResumableSha256.resume(state, 100)
    resumed.update(b"y")
    assert resumed.hexdigest() == hashlib.sha256(b"x" * 100 + b"y").hexdigest()
