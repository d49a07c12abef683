"""A SHA-256 whose state can be saved in the database and resumed by another process:
OpenSSL's ``SHA256_CTX`` (docs/design.md). Its functions are deprecated and the struct is
no format, so they are looked up at first use and a saved state carries a format version,
its writer (library and machine) and a checksum; one it cannot trust is hashed again.
"""

import ctypes
import ctypes.util
import functools
import hashlib
import platform
import struct
import zlib

FORMAT = 1
STATE_BYTES = 112
_MD_LEN_OFFSET = 108
_BITS_OFFSET = 32
_H0 = 0x6A09E667
_CRC = struct.Struct(">I")


@functools.cache
def _library():
    """The libcrypto hashlib uses, else the system's, when its struct is the layout read
    here and it hashes right (``writer``: its name and the machine); else None."""
    candidates = [ctypes.util.find_library("crypto")]
    try:
        import _hashlib

        candidates.insert(0, _hashlib.__file__)
    except (ImportError, AttributeError):
        pass
    for name in filter(None, candidates):
        try:
            library = ctypes.CDLL(name)
            library.SHA256_Init.argtypes = [ctypes.c_void_p]
            library.SHA256_Update.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
            library.SHA256_Final.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        except (OSError, AttributeError):
            continue
        if _works(library):
            writer = f"{_version(library)} {platform.machine()}"
            library.writer = writer.encode("ascii", "replace")[:255]
            return library
    return None


def _version(library):
    """``OpenSSL_version(OPENSSL_VERSION)``: the library's own name and version."""
    function = getattr(library, "OpenSSL_version", None)
    if function is None:
        return "libcrypto"
    function.argtypes, function.restype = [ctypes.c_int], ctypes.c_char_p
    return (function(0) or b"libcrypto").decode("ascii", "replace")


def available():
    """Whether states can be saved here (OpenSSL's SHA256 functions found and working)."""
    return _library() is not None


def _works(library):
    ctx = ctypes.create_string_buffer(STATE_BYTES)
    library.SHA256_Init(ctx)
    if struct.unpack_from("=I", ctx.raw, 0)[0] != _H0:
        return False
    if struct.unpack_from("=I", ctx.raw, _MD_LEN_OFFSET)[0] != 32:
        return False
    library.SHA256_Update(ctx, b"abc" * 30, 90)
    if struct.unpack_from("=II", ctx.raw, _BITS_OFFSET) != (720, 0):
        return False
    digest = ctypes.create_string_buffer(32)
    library.SHA256_Final(digest, ctx)
    return digest.raw == hashlib.sha256(b"abc" * 30).digest()


class ResumableSha256:
    """``hashlib.sha256`` with ``state()`` and ``resume()``; ``update`` takes bytes or any
    buffer (a read-only or non-contiguous one other than ``bytes`` is copied first)."""

    def __init__(self):
        self._lib = _library()
        if self._lib is None:
            raise RuntimeError("OpenSSL's SHA256 functions are not available")
        self._ctx = ctypes.create_string_buffer(STATE_BYTES)
        self._lib.SHA256_Init(self._ctx)
        self.length = 0

    @classmethod
    def resume(cls, state, length):
        """The hash saved by ``state()`` after ``length`` bytes, or None when ``state`` is
        not one this library wrote for that many bytes."""
        library = _library()
        ctx = _unpack(state, library.writer) if library is not None else None
        if ctx is None or not _valid(ctx, length):
            return None
        resumed = cls()
        ctypes.memmove(resumed._ctx, ctx, STATE_BYTES)
        resumed.length = length
        return resumed

    def update(self, data):
        if isinstance(data, bytes):
            self._lib.SHA256_Update(self._ctx, data, len(data))
            self.length += len(data)
            return
        with memoryview(data) as view:
            if view.readonly or not view.contiguous:
                self.update(view.tobytes())
                return
            with view.cast("B") as flat:
                pointer = (ctypes.c_char * flat.nbytes).from_buffer(flat)
                try:
                    self._lib.SHA256_Update(self._ctx, pointer, flat.nbytes)
                finally:
                    del pointer
                self.length += flat.nbytes

    def state(self):
        """The saved form: format, writer, the struct, a CRC-32 of all before it."""
        body = bytes((FORMAT, len(self._lib.writer))) + self._lib.writer + self._ctx.raw
        return body + _CRC.pack(zlib.crc32(body))

    def hexdigest(self):
        copy = ctypes.create_string_buffer(self._ctx.raw, STATE_BYTES)
        digest = ctypes.create_string_buffer(32)
        self._lib.SHA256_Final(digest, copy)
        return digest.raw.hex()


def _unpack(state, writer):
    """The struct in a saved ``state`` of this format by ``writer`` whose checksum holds."""
    if state is None:
        return None
    state = bytes(state)
    if len(state) != 2 + len(writer) + STATE_BYTES + _CRC.size or state[0] != FORMAT:
        return None
    body, crc = state[: -_CRC.size], state[-_CRC.size :]
    if body[1] != len(writer) or body[2 : 2 + len(writer)] != writer:
        return None
    if _CRC.unpack(crc)[0] != zlib.crc32(body):
        return None
    return body[2 + len(writer) :]


def _valid(ctx, length):
    """The struct's own fields agree with a hash of ``length`` bytes."""
    if length < 0:
        return False
    low, high = struct.unpack_from("=II", ctx, _BITS_OFFSET)
    pending, md_len = struct.unpack_from("=II", ctx, _MD_LEN_OFFSET - 4)
    return md_len == 32 and (high << 32 | low) == length * 8 and pending == length % 64
