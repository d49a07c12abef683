"""Writers of prometheus-client's multiprocess directory: real Python processes in
multiprocess mode (as gunicorn workers are), and a scrape of the directory."""

import os
import subprocess

from prometheus_client import CollectorRegistry, generate_latest

from portal.metrics import multiproc
from tests.basics import PYTHON, ROOT
from tests.metrics_helpers import parse

WRITER = r"""
import os, sys
from prometheus_client import Counter, Gauge, Histogram
requests = Counter("t_requests", "Requests.", ["view"])
seconds = Histogram("t_seconds", "Durations.", ["view"], buckets=(0.1, 1.0))
live = Gauge("t_live", "A live gauge.", ["k"], multiprocess_mode="livemostrecent")
n = int(sys.argv[1])
for i in range(n):
    requests.labels(view="a").inc()
    seconds.labels(view="a").observe(0.05 * (i % 30))
live.labels(k=str(os.getpid())).set(n)
print(os.getpid(), flush=True)
if sys.argv[2] == "stay":
    sys.stdin.read()
"""


class Writers:
    def __init__(self, path):
        self.path = path
        self.env = {**os.environ, multiproc.DIR_VARIABLE: str(path), "PYTHONPATH": str(ROOT)}
        self.alive = []

    def run(self, n):
        done = subprocess.run(
            [PYTHON, "-c", WRITER, str(n), "exit"],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return int(done.stdout)

    def start(self, n):
        proc = subprocess.Popen(
            [PYTHON, "-c", WRITER, str(n), "stay"],
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.alive.append(proc)
        return int(proc.stdout.readline())

    def stop(self):
        for proc in self.alive:
            proc.communicate(timeout=30)


def scrape(path):
    registry = CollectorRegistry()
    multiproc.locked_collector(registry, str(path))
    return parse(generate_latest(registry).decode())
