"""Where readiness checks run: one small thread pool per process, single-flight, cached.

A hung check keeps its thread (a thread cannot be stopped), so later probes share that
call: a thousand probes against a hung database cost one thread per check per process.
"""

import queue
import threading
import time
from concurrent.futures import Executor, Future, InvalidStateError

from health_check.exceptions import ServiceUnavailable

# One thread per readiness check (database, two storages) plus a spare.
PROBE_POOL_THREADS = 4


class SingleFlightExecutor(Executor):
    """A bounded pool where a call already running for the same check (the ``repr`` of the
    bound method's owner) is shared, not repeated.

    Each caller gets its own follower future, so a caller timing out never cancels the
    shared call. A call running past its check's ``timeout`` is hung: later probes fail
    at once instead of each holding a server thread for the full budget.
    """

    def __init__(self, max_workers=PROBE_POOL_THREADS):
        self._pool = DaemonPool(max_workers)
        self._lock = threading.Lock()
        self._in_flight: dict[str, tuple[Future, float]] = {}

    def submit(self, fn, /, *args, **kwargs):
        owner = getattr(fn, "__self__", fn)
        key = repr(owner)
        now = time.monotonic()
        with self._lock:
            shared, started = self._in_flight.get(key, (None, now))
            if shared is None or shared.done():
                shared, started = self._pool.submit(fn, *args, **kwargs), now
                self._in_flight[key] = (shared, started)
            elif now - started > _budget_seconds(owner):
                return _failed(ServiceUnavailable("the previous check has not returned yet"))
        return _follow(shared)


class DaemonPool:
    """A fixed set of daemon threads, started on first use. Not ``ThreadPoolExecutor``: the
    interpreter joins its threads at exit, and a hung check would hold a worker's restart."""

    def __init__(self, size):
        self.size = size
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def submit(self, fn, /, *args, **kwargs):
        future = Future()
        self._queue.put((future, fn, args, kwargs))
        with self._lock:
            while len(self._threads) < self.size:
                thread = threading.Thread(
                    target=self._work, name=f"probe-{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
        return future

    def _work(self):
        while True:
            future, fn, args, kwargs = self._queue.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)


def _budget_seconds(owner):
    timeout = getattr(owner, "timeout", None)
    return timeout.total_seconds() if timeout is not None else float("inf")


def _failed(exc):
    future = Future()
    future.set_running_or_notify_cancel()
    future.set_exception(exc)
    return future


def _follow(shared):
    follower = Future()
    follower.set_running_or_notify_cancel()

    def copy(done):
        try:
            if done.cancelled():
                follower.cancel()
            elif done.exception() is not None:
                follower.set_exception(done.exception())
            else:
                follower.set_result(done.result())
        except InvalidStateError:
            pass  # the caller gave up on its follower; the outcome is not needed

    shared.add_done_callback(copy)
    return follower


class ResultCache:
    """The last answer per key, reused for ``max_age`` seconds (0: off). Wall-clock time
    (time-machine moves it); an answer "from the future" is stale."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, object]] = {}

    def get(self, key, max_age):
        if max_age <= 0:
            return None
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            return None
        stored_at, value = entry
        return value if 0 <= time.time() - stored_at < max_age else None

    def put(self, key, value):
        with self._lock:
            self._entries[key] = (time.time(), value)

    def clear(self):
        with self._lock:
            self._entries.clear()


executor = SingleFlightExecutor()
results = ResultCache()
