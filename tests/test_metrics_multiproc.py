"""prometheus-client's multiprocess directory: real processes write it, dead ones are merged.

Each writer is a real Python process in multiprocess mode (as a gunicorn worker is); the
totals a scrape reports must not change when dead processes' files are merged, a dead
process's live gauges must disappear, and live processes' files must be left alone.
"""

import os
import subprocess
import threading

from portal.metrics import multiproc
from tests import fixtures
from tests.conftest import PYTHON
from tests.metrics_helpers import value
from tests.multiproc_helpers import scrape

writers = fixtures.writers  # a fixture of every module; named here for older imports


def files(path):
    return sorted(p.name for p in path.iterdir() if p.suffix == ".db")


def test_dead_processes_are_merged_and_totals_stay(writers, tmp_path):
    first, second = writers.run(5), writers.run(7)
    alive = writers.start(11)
    before = scrape(tmp_path)
    assert value(before, "t_requests_total", view="a") == 23
    assert value(before, "t_live", k=str(first)) == 5

    merged = multiproc.worker_exited(first, live_pids={alive}, path=str(tmp_path))
    multiproc.worker_exited(second, live_pids={alive}, path=str(tmp_path))

    assert merged == 4  # counter and histogram files of both dead processes
    assert files(tmp_path) == sorted(
        [
            "counter_dead.db",
            "histogram_dead.db",
            f"counter_{alive}.db",
            f"histogram_{alive}.db",
            f"gauge_livemostrecent_{alive}.db",
        ]
    )
    after = scrape(tmp_path)
    counted = {k: v for k, v in before.items() if k[0] != "t_live"}
    assert {k: v for k, v in after.items() if k[0] != "t_live"} == counted
    assert value(after, "t_live", k=str(first)) is None
    assert value(after, "t_live", k=str(alive)) == 11

    # Another exit later: its values are added to the merged ones.
    third = writers.run(4)
    multiproc.worker_exited(third, live_pids={alive}, path=str(tmp_path))
    again = scrape(tmp_path)
    assert value(again, "t_requests_total", view="a") == 27
    assert value(again, "t_seconds_count", view="a") == 27
    assert len(files(tmp_path)) == 5


def test_a_scrape_holding_the_lock_postpones_the_merge(writers, tmp_path):
    dead = writers.run(3)
    held, release = threading.Event(), threading.Event()

    def scrape_in_progress():
        with multiproc.merge_lock(str(tmp_path), exclusive=False):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=scrape_in_progress)
    thread.start()
    held.wait(10)
    try:
        assert multiproc.worker_exited(dead, live_pids=(), path=str(tmp_path), wait=0.05) == 0
        assert f"counter_{dead}.db" in files(tmp_path)
        assert f"gauge_livemostrecent_{dead}.db" not in files(tmp_path)  # live gauges go anyway
    finally:
        release.set()
        thread.join()
    assert multiproc.worker_exited(dead, live_pids=(), path=str(tmp_path)) == 2
    assert value(scrape(tmp_path), "t_requests_total", view="a") == 3


def test_each_master_gets_its_own_directory_and_removes_it(tmp_path, monkeypatch):
    monkeypatch.setenv(multiproc.DIR_VARIABLE, "/somewhere/else")
    monkeypatch.setenv(multiproc.OWNER_VARIABLE, "")
    gone = subprocess.run([PYTHON, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_pid = int(gone.stdout)
    abandoned = tmp_path / f"{multiproc.DIR_PREFIX}{dead_pid}-abc"
    abandoned.mkdir()
    (abandoned / "counter_1.db").write_bytes(b"x")
    living = tmp_path / f"{multiproc.DIR_PREFIX}{os.getppid()}-def"
    living.mkdir()
    unrelated = tmp_path / "portal-other"
    unrelated.mkdir()

    path = multiproc.use_private_directory(parent=str(tmp_path))

    assert os.environ[multiproc.DIR_VARIABLE] == path != "/somewhere/else"
    assert os.path.basename(path).startswith(f"{multiproc.DIR_PREFIX}{os.getpid()}-")
    assert os.listdir(path) == []
    assert not abandoned.exists() and living.exists() and unrelated.exists()
    # A configuration reload in the same master keeps the directory (and its counts).
    assert multiproc.use_private_directory(parent=str(tmp_path)) == path
    multiproc.remove_private_directory()
    assert not os.path.exists(path)


def test_another_masters_directory_is_never_removed(tmp_path, monkeypatch):
    other = tmp_path / "theirs"
    other.mkdir()
    monkeypatch.setenv(multiproc.DIR_VARIABLE, str(other))
    monkeypatch.setenv(multiproc.OWNER_VARIABLE, str(os.getpid() + 1))
    multiproc.remove_private_directory()
    assert other.exists()


def test_a_live_process_missing_from_the_live_list_is_left_alone(writers, tmp_path):
    dead, unlisted = writers.run(2), writers.start(3)
    merged = multiproc.worker_exited(dead, live_pids=set(), path=str(tmp_path))
    assert merged == 2  # the dead one's counter and histogram, not the running process's
    assert f"counter_{unlisted}.db" in files(tmp_path)
    assert value(scrape(tmp_path), "t_requests_total", view="a") == 5
