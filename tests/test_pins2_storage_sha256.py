"""The resumable SHA-256 finds OpenSSL's SHA256 functions where hashlib has none to offer:
a Python whose ``hashlib`` is built without OpenSSL (no ``_hashlib``) still saves the
file's hash with the system's libcrypto (``ctypes.util.find_library("crypto")``)."""

import ctypes.util
import hashlib
import sys

import pytest

from portal.storage import sha256state
from portal.storage.sha256state import ResumableSha256


@pytest.fixture
def without_hashlibs_openssl(monkeypatch):
    """``import _hashlib`` fails, as on a build without it; the probe runs afresh."""
    monkeypatch.setitem(sys.modules, "_hashlib", None)
    sha256state._library.cache_clear()
    yield
    sha256state._library.cache_clear()


@pytest.mark.skipif(not ctypes.util.find_library("crypto"), reason="no system libcrypto")
def test_the_systems_libcrypto_serves_when_hashlib_has_no_openssl(without_hashlibs_openssl):
    assert sha256state.available() is True
    digest = ResumableSha256()
    digest.update(b"a" * 100)
    resumed = ResumableSha256.resume(digest.state(), 100)
    resumed.update(b"b")
    assert resumed.hexdigest() == hashlib.sha256(b"a" * 100 + b"b").hexdigest()
    assert sha256state._library().writer.startswith(b"OpenSSL ")


@pytest.fixture
def fresh_probe():
    sha256state._library.cache_clear()
    yield
    sha256state._library.cache_clear()


def test_hashlibs_own_openssl_passes_the_probe_and_names_the_writer(fresh_probe):
    """On this Linux build the struct is the layout read here: states are saved, and they
    name the library's version and the machine (a state from elsewhere is not trusted)."""
    import platform

    assert sha256state.available() is True
    writer = sha256state._library().writer.decode()
    assert writer.startswith("OpenSSL ") and writer.endswith(f" {platform.machine()}")
    digest = ResumableSha256()
    digest.update(b"abc" * 1000)
    assert digest.state()[2 : 2 + len(writer)] == writer.encode()
    assert digest.hexdigest() == hashlib.sha256(b"abc" * 1000).hexdigest()


def test_hashlibs_library_serves_where_the_system_lookup_finds_none(fresh_probe, monkeypatch):
    """A slim image where ``find_library`` finds nothing (no ldconfig cache, no compiler):
    the libcrypto that hashlib itself loaded still serves."""
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert sha256state.available() is True
    digest = ResumableSha256()
    digest.update(b"x" * 70)
    assert (
        ResumableSha256.resume(digest.state(), 70).hexdigest()
        == hashlib.sha256(b"x" * 70).hexdigest()
    )


def spoiling(name, spoil):
    """A ``ctypes.CDLL`` whose function ``name`` is followed by ``spoil(args)``: the
    library as one built with another ``SHA256_CTX`` layout (or a broken one) behaves."""

    class OtherBuild(ctypes.CDLL):
        def __getattr__(self, attribute):
            function = super().__getattr__(attribute)
            if attribute != name:
                return function

            def wrapped(*args):
                result = function(*args)
                spoil(args)
                return result

            setattr(self, attribute, wrapped)
            return wrapped

    return OtherBuild


def put(offset, data):
    return lambda args: ctypes.memmove(ctypes.addressof(args[0]) + offset, data, len(data))


LAYOUTS = {
    "h0 elsewhere": ("SHA256_Init", put(0, b"\0\0\0\0")),
    "md_len elsewhere": ("SHA256_Init", put(sha256state._MD_LEN_OFFSET, b"\0\0\0\0")),
    "bit count elsewhere": ("SHA256_Update", put(sha256state._BITS_OFFSET, b"\0" * 8)),
    "wrong digest": ("SHA256_Final", put(0, b"\xff")),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_library_that_lays_out_or_hashes_otherwise_is_not_used(fresh_probe, monkeypatch, layout):
    """The probe hashes a known input and reads the struct's fields where this module
    reads them: a library that differs anywhere is refused and states are not saved."""
    monkeypatch.setattr(ctypes, "CDLL", spoiling(*LAYOUTS[layout]))
    assert sha256state.available() is False
    with pytest.raises(RuntimeError):
        ResumableSha256()
