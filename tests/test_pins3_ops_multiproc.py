"""A scrape and a merge of dead workers' files never overlap.

``worker_exited`` merges under the exclusive lock in steps: the merged ``<kind>_dead.db``
replaces the old one first, the dead workers' own files are deleted after. A scrape that
read the directory between those steps would count the dead workers twice (or fail on a
file deleted under it): the scrape's shared lock waits for the merge, and everything it
returns was read while it held the lock.
"""

import os
import shutil
import threading

from prometheus_client import CollectorRegistry, generate_latest

from portal.metrics import multiproc
from tests.metrics_helpers import parse, value

BLOCKED_SECONDS = 1.5  # > LOCK_WAIT_SECONDS: a scrape taking the exclusive lock would give up


class ScrapeThread(threading.Thread):
    """One scrape through the locked collector, its exposition or error kept."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.registry = CollectorRegistry()
        multiproc.locked_collector(self.registry, str(path))
        self.samples = self.error = None

    def run(self):
        try:
            self.samples = parse(generate_latest(self.registry).decode())
        except Exception as exc:
            self.error = exc


def half_merged(path, dead_pids, scratch):
    """The directory as ``merge_dead_files`` leaves it between its replace and its unlinks:
    merged totals in ``counter_dead.db``, the dead workers' counter files still there."""
    for pid in dead_pids:
        shutil.copy(path / f"counter_{pid}.db", scratch)
    multiproc.merge_dead_files(str(scratch), alive={os.getpid()})
    os.replace(scratch / "counter_dead.db", path / "counter_dead.db")


def test_a_scrape_during_a_merge_waits_and_counts_dead_workers_once(
    writers,
    tmp_path,
    tmp_path_factory,
):
    """The scrape started mid-merge reports the true total (3 + 4), not the dead workers'
    requests twice: it reads the directory only once the merge released its lock."""
    directory = tmp_path
    dead, other = writers.run(3), writers.run(4)

    with multiproc.merge_lock(str(directory), exclusive=True) as locked:
        assert locked
        half_merged(directory, [dead, other], tmp_path_factory.mktemp("scratch"))
        scrape = ScrapeThread(directory)
        scrape.start()
        scrape.join(BLOCKED_SECONDS)
        assert scrape.is_alive(), "the scrape read the files while a merge held the lock"
        for pid in (dead, other):
            os.unlink(directory / f"counter_{pid}.db")
    scrape.join(30)

    assert scrape.error is None
    assert value(scrape.samples, "t_requests_total", view="a") == 7


def test_what_a_scrape_returns_was_read_before_it_released_the_lock(writers, tmp_path):
    """collect() hands back finished figures: files deleted or merged after it returned
    (a worker exiting right after the scrape) do not change what it reports."""
    writers.run(5)
    writers.run(6)
    registry = CollectorRegistry()
    collector = multiproc.locked_collector(registry, str(tmp_path))

    families = collector.collect()
    for name in os.listdir(tmp_path):
        if name.endswith(".db"):
            os.unlink(tmp_path / name)
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in families
        for s in family.samples
    }

    assert value(samples, "t_requests_total", view="a") == 11
    assert value(samples, "t_seconds_count", view="a") == 11
    assert list(collector.collect()) == []  # the files really are gone


def test_a_staging_file_left_by_a_crashed_merge_is_not_added_in(tmp_path):
    """A merge killed after it began writing ``counter_dead.tmp`` leaves it behind; the
    next merge starts that file afresh, or a crash would count its totals twice."""
    from prometheus_client.mmap_dict import MmapedDict

    key = '["portal_requests_total", "portal_requests_total", {"status": "2xx"}, "h"]'
    stale = key.replace("2xx", "5xx")  # a series the dead worker never wrote
    for name, series in (("counter_4000001.db", key), ("counter_dead.tmp", stale)):
        written = MmapedDict(str(tmp_path / name))
        written.write_value(series, 3.0, 0.0)
        written.close()

    assert multiproc.merge_dead_files(str(tmp_path), alive={os.getpid()}) == 1

    merged = MmapedDict.read_all_values_from_file(str(tmp_path / "counter_dead.db"))
    assert [(k, v) for k, v, _timestamp, _pos in merged] == [(key, 3.0)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_dead.db"]
