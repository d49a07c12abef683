"""prometheus-client's multiprocess mode under gunicorn: one private directory per master,
and exited workers' counters merged into one ``<kind>_dead.db`` per kind (recycled
workers' files would otherwise slow every scrape down, the longer the server runs).

Loaded by gunicorn's master: no Django, and ``prometheus_client`` only inside functions
(it picks its value class at import, from ``PROMETHEUS_MULTIPROC_DIR``).
"""

import contextlib
import fcntl
import glob
import os
import shutil
import tempfile
import time

DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
OWNER_VARIABLE = "PORTAL_METRICS_DIR_OWNER"
DIR_PREFIX = "portal-metrics-"
TMPFS = "/dev/shm"  # noqa: S108 (tmpfs on purpose: the files are rewritten on every request)
LOCK_FILE = "merge.lock"
MERGED = "dead"  # in place of a pid in the merged file's name
# Kinds whose per-process values add up (a histogram file holds raw per-bucket counts).
ADDITIVE_KINDS = ("counter", "histogram", "summary")
LOCK_WAIT_SECONDS = 1.0
LOCK_POLL_SECONDS = 0.01


def default_parent():
    """tmpfs when there is one, else the temp directory."""
    if os.path.isdir(TMPFS) and os.access(TMPFS, os.W_OK):
        return TMPFS
    return tempfile.gettempdir()


def use_private_directory(parent=None):
    """Give this master a fresh ``PROMETHEUS_MULTIPROC_DIR`` (before any worker forks, so
    every worker inherits it); return its path. Idempotent for one master."""
    current = os.environ.get(DIR_VARIABLE, "")
    if os.environ.get(OWNER_VARIABLE) == str(os.getpid()) and os.path.isdir(current):
        return current
    parent = parent or default_parent()
    remove_abandoned_directories(parent)
    path = tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-", dir=parent)
    os.environ[DIR_VARIABLE] = path
    os.environ[OWNER_VARIABLE] = str(os.getpid())
    return path


def remove_private_directory():
    """Delete this master's directory (gunicorn's ``on_exit``); others are left alone."""
    path = os.environ.get(DIR_VARIABLE, "")
    if path and os.environ.get(OWNER_VARIABLE) == str(os.getpid()):
        shutil.rmtree(path, ignore_errors=True)


def remove_abandoned_directories(parent):
    """Delete directories of masters that died without ``on_exit`` (SIGKILL, OOM)."""
    for path in glob.glob(os.path.join(parent, f"{DIR_PREFIX}*")):
        pid = os.path.basename(path)[len(DIR_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or process_alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            if os.stat(path).st_uid == os.getuid():
                shutil.rmtree(path, ignore_errors=True)


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def worker_exited(pid, live_pids, path=None, wait=LOCK_WAIT_SECONDS):
    """gunicorn's ``child_exit``: drop the worker's live gauges, merge dead workers' files.

    Returns the number of files merged (0 when a scrape held the lock past ``wait``).
    """
    from prometheus_client import multiprocess

    path = path or os.environ[DIR_VARIABLE]
    multiprocess.mark_process_dead(pid, path)
    alive = set(live_pids) | {os.getpid()}
    with merge_lock(path, exclusive=True, wait=wait) as locked:
        if not locked:
            return 0
        return merge_dead_files(path, alive)


def merge_dead_files(path, alive):
    """Add dead processes' additive files into ``<kind>_dead.db`` (written as ``.tmp``, which
    the collector does not read, then renamed); delete them. Needs the exclusive lock."""
    from prometheus_client.mmap_dict import MmapedDict

    merged_files = 0
    for kind in ADDITIVE_KINDS:
        dead = [f for f in glob.glob(os.path.join(path, f"{kind}_*.db")) if _is_dead(f, alive)]
        if not dead:
            continue
        target = os.path.join(path, f"{kind}_{MERGED}.db")
        sources = [target, *dead] if os.path.exists(target) else dead
        totals = {}
        for source in sources:
            for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(source):
                totals[key] = totals.get(key, 0.0) + value
        staging = os.path.join(path, f"{kind}_{MERGED}.tmp")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging)  # left by a crash; MmapedDict would append to it
        merged = MmapedDict(staging)
        try:
            for key, value in totals.items():
                merged.write_value(key, value, 0.0)
        finally:
            merged.close()
        os.replace(staging, target)
        for source in dead:
            os.unlink(source)
        merged_files += len(dead)
    return merged_files


def _is_dead(filename, alive):
    owner = os.path.basename(filename)[:-3].split("_", 1)[1]
    if not owner.isdigit():
        return False  # the merged file itself, or a name this module did not write
    pid = int(owner)
    return pid not in alive and not process_alive(pid)


@contextlib.contextmanager
def merge_lock(path, *, exclusive, wait=LOCK_WAIT_SECONDS):
    """Yield True holding the lock: shared while a scrape reads the files, exclusive while
    dead files merge. An exclusive lock yields False after ``wait`` seconds without it: the
    master must not block on a hung scrape."""
    fd = os.open(os.path.join(path, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if not exclusive:
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield True
            return
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(LOCK_POLL_SECONDS)
        yield True
    finally:
        os.close(fd)


def active_directory():
    """The multiprocess directory of this process, or None outside multiprocess mode."""
    path = os.environ.get(DIR_VARIABLE, "")
    return path if path and os.path.isdir(path) else None


def locked_collector(registry, path):
    from prometheus_client import multiprocess

    class LockedMultiProcessCollector(multiprocess.MultiProcessCollector):
        def collect(self):
            with merge_lock(path, exclusive=False):
                # merge() reads every file before it returns: nothing is read after unlock.
                return list(super().collect())

    return LockedMultiProcessCollector(registry, path)
