"""Pins (issue #31, sixth round) for the metrics: the multiprocess directories, with data
where a wrong implementation used to pass too."""

import os
import subprocess

from portal.metrics import multiproc
from tests.conftest import PYTHON


def dead_pid():
    gone = subprocess.run([PYTHON, "-c", "import os; print(os.getpid())"], capture_output=True)
    return int(gone.stdout)


def test_a_dead_masters_directory_of_another_user_is_left_alone(tmp_path, monkeypatch):
    """/dev/shm is shared by every user of the host: a master clears abandoned metrics
    directories of its own user only, never another account's (whose master may run in
    another PID namespace, or whose files it has no business deleting)."""
    abandoned = tmp_path / f"{multiproc.DIR_PREFIX}{dead_pid()}-abc"
    abandoned.mkdir()
    (abandoned / "counter_1.db").write_bytes(b"x")
    # This process pretends to be another user (the test cannot chown everywhere).
    real_uid = os.getuid()
    monkeypatch.setattr(multiproc.os, "getuid", lambda: real_uid + 1)

    multiproc.remove_abandoned_directories(str(tmp_path))
    assert (abandoned / "counter_1.db").exists()

    monkeypatch.setattr(multiproc.os, "getuid", lambda: real_uid)
    multiproc.remove_abandoned_directories(str(tmp_path))
    assert not abandoned.exists()
