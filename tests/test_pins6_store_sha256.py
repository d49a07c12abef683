"""Pins (weak-pin review 6, storage area): a saved sha256 state whose struct is not the
size this library's is, or that is no SHA-256, even with a checksum that holds, is never
resumed."""

import sys
import zlib

import pytest

from portal.storage import sha256state
from portal.storage.sha256state import ResumableSha256

pytestmark = pytest.mark.skipif(not sha256state.available(), reason="no OpenSSL SHA256_CTX")


def resealed(body):
    return body + zlib.crc32(body).to_bytes(4, "big")


@pytest.mark.parametrize("change", ["longer", "shorter"])
def test_a_state_of_another_struct_size_is_not_resumed(change):
    """resume() checks the state's length: a struct of another size (another library
    build) would be copied into OpenSSL's context half-read or misaligned."""
    digest = ResumableSha256()
    digest.update(b"x" * 100)
    state = digest.state()
    assert ResumableSha256.resume(resealed(state[:-4]), 100).hexdigest() == digest.hexdigest()
    body = state[:-4] + b"\0" * 8 if change == "longer" else state[:-12]
    assert ResumableSha256.resume(resealed(body), 100) is None


def test_a_state_whose_digest_length_is_not_32_is_not_resumed():
    """resume() checks md_len: a SHA-224 context has the same struct and byte count, and
    resumed as SHA-256 it would finish with a digest no part was ever checked against."""
    digest = ResumableSha256()
    digest.update(b"y" * 70)
    state = digest.state()
    at = 2 + state[1] + sha256state._MD_LEN_OFFSET
    body = state[:at] + (28).to_bytes(4, sys.byteorder) + state[at + 4 : -4]
    assert ResumableSha256.resume(resealed(body), 70) is None
    assert ResumableSha256.resume(resealed(state[:-4]), 70).hexdigest() == digest.hexdigest()
