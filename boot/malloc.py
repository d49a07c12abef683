"""glibc's allocator, tuned for a server that moves part bodies in large buffers.

glibc serves blocks above its mmap threshold (128 KiB) with ``mmap`` and unmaps them when
freed, but after the first such free it raises the threshold to that block's size (up to
32 MiB). From then on the 8 MiB buffers of a part upload to S3 (s3transfer reads the part
into one, botocore signs and sends it) come from the heap arenas, one per thread, which
keep their high-water mark: a gthread worker stayed at 200+ MB after four concurrent S3
uploads. A fixed threshold keeps large buffers on ``mmap`` (returned when freed), and two
arenas bound what the threads can strand between them.
"""

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 1024 * 1024
ARENA_MAX = 2


def tune():
    """Apply both settings to this process (and the children it forks later); False where
    the C library is not glibc and has nothing to tune."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(M_ARENA_MAX, ARENA_MAX)
    )
