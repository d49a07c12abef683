"""glibc's allocator tuning (docs/configuration.md, "gunicorn"): with the environment
the deployments give gunicorn a freed 8 MiB buffer goes back to the system; without it
glibc keeps it (the reason for the tuning, shown on this machine's C library). The unit,
the image and the benchmarks set the same values."""

import os
import re
import subprocess

import pytest

from bench.lib.uploads import environment
from tests.conftest import PYTHON, ROOT

TUNING = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "1048576"}

# Free one large buffer (glibc then raises its mmap threshold), take and free another,
# and print how far the resident size stayed above where it started, in KiB.
SCRIPT = """
def rss_kib():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmRSS:"))
size = 8 * 1024 * 1024
first = bytearray(size)
del first
before = rss_kib()
second = bytearray(size)
del second
print(rss_kib() - before)
"""


def stranded_kib(tuning):
    env = {k: v for k, v in os.environ.items() if k not in TUNING}
    result = subprocess.run(
        [PYTHON, "-c", SCRIPT],
        cwd=ROOT,
        env={**env, **tuning},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


def test_a_freed_part_buffer_goes_back_to_the_system_with_the_tuning():
    if not os.path.exists("/proc/self/status") or not os.confstr("CS_GNU_LIBC_VERSION"):
        pytest.skip("not glibc on Linux: nothing to tune")
    assert stranded_kib(TUNING) < 1024
    assert stranded_kib({}) > 6 * 1024  # glibc's default kept the second buffer


def test_the_unit_the_image_and_the_benchmarks_set_the_same_tuning():
    unit = (ROOT / "deploy" / "systemd" / "portal.service").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    for name, value in TUNING.items():
        assert f"\nEnvironment={name}={value}\n" in unit
        assert re.search(rf"^\s+{name}={value}\b", dockerfile, re.MULTILINE)
    assert TUNING.items() <= environment(ROOT / "var").items()
