"""Helpers for the metrics tests: the scrape token, parsing an exposition, finding programs."""

import http.client
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import stop_process

TOKEN = "metrics-test-token-0123456789abcdef-XYZ"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def parse(text):
    """``{(sample name, frozenset of labels): value}`` of a text-format exposition."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples, name, **labels):
    """One sample's value, or None when the exposition does not have it."""
    return samples.get((name, frozenset(labels.items())))


def names(samples):
    return {name for name, _ in samples}


def scrape(client, **headers):
    response = client.get("/metrics", headers={**AUTH, **headers})
    assert response.status_code == 200, response.content
    return parse(response.content.decode())


def program(name):
    """The path of a Debian program the test needs; skip without it, fail under CI=true."""
    path = shutil.which(name) or (
        f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None
    )
    if path:
        return path
    message = f"{name} is not installed (Debian package 'prometheus'; .ci/run installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


class GunicornServer:
    """gunicorn with the project's ``gunicorn.conf.py`` (2 workers) on a free port."""

    def __init__(self, env, log_path, workers=2):
        from tests.basics import PYTHON, ROOT, free_port

        self.port = free_port()
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")],
            cwd=ROOT,
            env={
                **env,
                "HOST": "127.0.0.1",
                "PORT": str(self.port),
                "WEB_CONCURRENCY": str(workers),
                "GUNICORN_THREADS": "2",
                "PORTAL_METRICS_TOKEN": TOKEN,
            },
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait(workers)

    def _wait(self, workers):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                if self.request("GET", "/health")[0] == 200 and len(self.workers()) == workers:
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("gunicorn did not start:\n" + self.output())

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def request(self, method, path, body=None, headers=None):
        """One request on a new connection (so the workers take turns accepting)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def scrape(self):
        status, body = self.request("GET", "/metrics", headers=AUTH)
        assert status == 200, body
        return body.decode()

    def workers(self):
        pid = self.proc.pid
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]

    def metrics_directory(self):
        from portal.metrics import multiproc

        pattern = f"{multiproc.DIR_PREFIX}{self.proc.pid}-*"
        [path] = Path(multiproc.default_parent()).glob(pattern)
        return path

    def output(self):
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self):
        stop_process(self.proc)
        self._log.close()


@pytest.fixture(autouse=True)
def metrics_settings(settings):
    """The scrape token set, the probe results and the collector's cache empty: autouse in a
    module that imports it."""
    from portal.health import executor
    from portal.metrics import collector

    settings.PORTAL_METRICS_TOKEN = TOKEN
    settings.PORTAL_READY_CACHE_SECONDS = 0
    collector.collector.clear()
    executor.results.clear()
    yield settings
    executor.results.clear()


def requests_count(**labels):
    return REGISTRY.get_sample_value("portal_http_requests_total", labels) or 0


def duration_count(**labels):
    return REGISTRY.get_sample_value("portal_http_request_duration_seconds_count", labels) or 0
