"""Real small filesystems for the free-space tests: ``mount_small_volume`` mounts a tmpfs
(the ``small_volume`` fixture unmounts it after the test).

``statvfs`` on it reports what a full disk reports and a write past it fails with ENOSPC:
no seam to patch, the kernel says how much room there is. Mounting needs root; without it
a test skips with a message (and fails under ``CI=true``, where CI runs as root).
"""

import errno
import os
import subprocess

import pytest

KIB = 1024
MIB = 1024 * KIB


def mount_small_volume(path, size, *options):
    """A tmpfs of ``size`` bytes at ``path`` (``options``: more ``-o`` options, e.g. ``ro``)."""
    path.mkdir(parents=True, exist_ok=True)
    flags = ",".join((f"size={size}", *options))
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", flags, "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        message = f"cannot mount a small tmpfs here ({result.stderr.strip()}); needs root"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def unmount(path):
    subprocess.run(["umount", "-l", str(path)], check=False)


def free(volume):
    status = os.statvfs(volume)
    return status.f_bavail * status.f_frsize


def fill(volume, leave):
    """Fill ``volume`` until ``leave`` bytes (within a page) are free; the ballast file."""
    ballast = volume / "ballast"
    with open(ballast, "ab") as handle:
        handle.write(b"\0" * max(0, free(volume) - leave))
    return ballast


def fill_up(volume):
    """Write to ``volume`` until the kernel refuses (ENOSPC), as another writer would."""
    with open(volume / "ballast", "ab", buffering=0) as handle:
        try:
            while handle.write(b"\0" * (4 * KIB)):
                pass
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    assert free(volume) == 0
