"""A SHA-256 whose state can be saved in the database and resumed by another process.

``hashlib`` cannot export a state; OpenSSL's ``SHA256_CTX`` (112 bytes) can, at
``hashlib``'s speed and without the GIL. A saved state is checked (length, ``md_len``, the
bit count) before it is trusted; one that fails, or no OpenSSL (``AVAILABLE`` False),
means the caller hashes the bytes again.
"""

import ctypes
import ctypes.util
import struct

STATE_BYTES = 112
_MD_LEN_OFFSET = 108
_BITS_OFFSET = 32
_H0 = 0x6A09E667


def _load():
    """libcrypto's SHA256 functions: the library hashlib uses, else the system's."""
    candidates = []
    try:
        import _hashlib

        candidates.append(_hashlib.__file__)
    except (ImportError, AttributeError):
        pass
    candidates.append(ctypes.util.find_library("crypto"))
    for name in filter(None, candidates):
        try:
            lib = ctypes.CDLL(name)
            functions = lib.SHA256_Init, lib.SHA256_Update, lib.SHA256_Final
        except (OSError, AttributeError):
            continue
        init, update, final = functions
        init.argtypes = [ctypes.c_void_p]
        update.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        final.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        return init, update, final
    return None


def _works(functions):
    """The library's struct is the layout this module reads, and it hashes right."""
    import hashlib

    init, update, final = functions
    ctx = ctypes.create_string_buffer(STATE_BYTES)
    init(ctx)
    if struct.unpack_from("=I", ctx.raw, 0)[0] != _H0:
        return False
    if struct.unpack_from("=I", ctx.raw, _MD_LEN_OFFSET)[0] != 32:
        return False
    update(ctx, b"abc" * 30, 90)
    if struct.unpack_from("=II", ctx.raw, _BITS_OFFSET) != (720, 0):
        return False
    digest = ctypes.create_string_buffer(32)
    final(digest, ctx)
    return digest.raw == hashlib.sha256(b"abc" * 30).digest()


_FUNCTIONS = _load()
AVAILABLE = _FUNCTIONS is not None and _works(_FUNCTIONS)


class ResumableSha256:
    """``hashlib.sha256`` with ``state()`` and ``resume()``; ``update`` takes bytes or any
    buffer (a read-only or non-contiguous one other than ``bytes`` is copied first)."""

    def __init__(self):
        if not AVAILABLE:
            raise RuntimeError("OpenSSL's SHA256 functions are not available")
        self._ctx = ctypes.create_string_buffer(STATE_BYTES)
        _FUNCTIONS[0](self._ctx)
        self.length = 0

    @classmethod
    def resume(cls, state, length):
        """The hash saved by ``state()`` after ``length`` bytes, or None when ``state`` is
        not such a state (then the caller hashes those bytes again)."""
        if not AVAILABLE or not _valid(state, length):
            return None
        resumed = cls()
        ctypes.memmove(resumed._ctx, bytes(state), STATE_BYTES)
        resumed.length = length
        return resumed

    def update(self, data):
        if isinstance(data, bytes):
            _FUNCTIONS[1](self._ctx, data, len(data))
            self.length += len(data)
            return
        with memoryview(data) as view:
            if view.readonly or not view.contiguous:
                self.update(view.tobytes())
                return
            self._update_writable(view)

    def _update_writable(self, view):
        with view.cast("B") as flat:
            pointer = (ctypes.c_char * flat.nbytes).from_buffer(flat)
            try:
                _FUNCTIONS[1](self._ctx, pointer, flat.nbytes)
            finally:
                del pointer
            self.length += flat.nbytes

    def state(self):
        return self._ctx.raw

    def hexdigest(self):
        copy = ctypes.create_string_buffer(self._ctx.raw, STATE_BYTES)
        digest = ctypes.create_string_buffer(32)
        _FUNCTIONS[2](digest, copy)
        return digest.raw.hex()


def _valid(state, length):
    if state is None or len(state) != STATE_BYTES or length < 0:
        return False
    state = bytes(state)
    low, high = struct.unpack_from("=II", state, _BITS_OFFSET)
    pending, md_len = struct.unpack_from("=II", state, _MD_LEN_OFFSET - 4)
    return md_len == 32 and (high << 32 | low) == length * 8 and pending == length % 64
