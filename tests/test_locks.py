"""Named locks: one holder across processes, released when the holder dies."""

import signal
import subprocess
import time

import pytest

from portal import locks
from tests.conftest import PYTHON, ROOT

HOLDER = """
import sys, time, django
from configurations import importer
importer.install()
django.setup()
from portal import locks
with locks.hold(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def holder(subprocess_env):
    procs = []

    def start(name):
        proc = subprocess.Popen(
            [PYTHON, "-c", HOLDER, name],
            cwd=ROOT,
            env=subprocess_env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout.readline().strip() == "held"
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_second_holder_is_refused_until_the_first_dies(holder):
    proc = holder("cleanup")
    with pytest.raises(locks.LockBusy), locks.hold("cleanup"):
        pass
    with locks.hold("another-name"):
        pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while True:
        try:
            with locks.hold("cleanup"):
                break
        except locks.LockBusy:
            assert time.monotonic() < deadline, "lock not released after SIGKILL"
            time.sleep(0.1)


def test_lock_is_reentrant_after_release(transactional_db, portal_storage):
    with locks.hold("x"):
        pass
    with locks.hold("x"):
        pass
