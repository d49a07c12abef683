"""bench/peer.py's care for the memory both servers write into (see ``prime_memory``)."""

import os

MIB = 1024 * 1024
PRIME_FACTOR = 1.5


def prime_memory(directory, size):
    """Write and delete a scratch file of ``PRIME_FACTOR`` x ``size`` in ``directory``.

    On this kind of host (a Firecracker VM, 2026-12-01) the first write into memory that
    has lain free for a few seconds is slow: ``pwrite`` of 512 MiB into a new file cost
    1.0-1.8 s of CPU after 5 s idle, 0.12-0.14 s right after a file of that size was
    deleted. That is more than everything else a server does with an upload, and which
    timed run met such memory was chance (the same server's CPU for one file moved by
    1.8x between rounds). Pages freed just before a run are quick to write, so every
    timed run, of either server, starts with the same kind of memory. ``--no-prime``
    turns this off.
    """
    if directory is None:
        return
    path = directory / "prime-memory.bin"
    block = bytes(MIB)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for index in range(int(size * PRIME_FACTOR) // MIB):
            os.pwrite(fd, block, index * MIB)
    finally:
        os.close(fd)
        path.unlink()
