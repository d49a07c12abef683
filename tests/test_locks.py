"""Named locks: one holder across processes, released when the holder dies."""

import signal
import time

import pytest

from portal import locks


def test_second_holder_is_refused_until_the_first_dies(lock_holder):
    proc = lock_holder("cleanup")
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
