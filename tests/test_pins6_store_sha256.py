"""Pins (weak-pin review 6, storage area): a saved sha256 state whose struct is not the
size this library's is, even with a checksum that holds, is never resumed."""

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
