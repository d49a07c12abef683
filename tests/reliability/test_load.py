"""Load: 20 concurrent clients upload many files through a real gunicorn while cleanup and
probes run.

The server is ``gunicorn -c gunicorn.conf.py boot.wsgi`` (gthread workers) on a free
port, sharing the test database and storage. Twenty client threads, each on its own
keep-alive connection, upload ``PORTAL_LOAD_FILES`` files of 1-4 MiB in 256 KiB parts
(parts of one file in shuffled order) and finalize them; each client also starts and
aborts one session, so cleanup has parts to reclaim while uploads go on. Meanwhile
``manage.py portal_cleanup`` runs again and again as a subprocess and a prober asks
``/ready`` and ``/health`` several times a second on fresh connections (as a load
balancer does).

Outcome, not timing, is asserted: every file is ``stored`` with the sha256 the client
computed (in the server's answer, in the database, and over the bytes read back through
``tests.objects.iter_final``), every probe answered 200, no request answered 5xx, every
cleanup run exited 0, and the server logged no ERROR line. The figures (requests, errors,
duration, throughput) are printed as one summary line.

With ``PORTAL_TEST_STORAGE=s3`` the bucket lives in a moto server of its own process
(``moto_server``), as S3 would: the suite's in-process moto server would share the test
process's interpreter lock with the twenty clients and starve. Size: ``PORTAL_LOAD_FILES``
(default 200 on local storage, 40 on S3, where every byte also goes through moto three
times: part, assembly, read-back).
"""

import hashlib
import http.client
import json
import subprocess
import time

import pytest

from portal import storage
from portal.models import IngestFile, UploadPart, UploadSession
from portal.services.tokens import create_token
from tests import objects
from tests.conftest import ROOT, TEST_STORAGE, MotoS3, apply_storage, free_port
from tests.processes import stop_process
from tests.reliability import invariants
from tests.reliability.load import (
    CLIENTS,
    GUNICORN,
    Background,
    CleanupLoop,
    Prober,
    load_files,
    run_clients,
    summary_line,
)

pytestmark = [pytest.mark.reliability, pytest.mark.slow]


class Gunicorn:
    def __init__(self, env, log_path):
        self.port = free_port()
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            [GUNICORN, "-c", "gunicorn.conf.py", "boot.wsgi"],
            cwd=ROOT,
            env={**env, "HOST": "127.0.0.1", "PORT": str(self.port)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"gunicorn exited: {self.output()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"gunicorn did not serve: {self.output()}")
            time.sleep(0.1)

    def output(self):
        return self.log_path.read_text(errors="replace")

    def records(self):
        lines = self.output().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")], lines

    def stop(self):
        stop_process(self.proc, timeout=30)
        self.log.close()


class MotoProcess(MotoS3):
    """A moto S3 server in a process of its own."""

    def start(self, timeout=None):  # its own bounded wait below
        self.server = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/")
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                if self.server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("moto_server did not start") from None
                time.sleep(0.1)

    def stop(self):
        if self.server is not None:
            self.server.terminate()
            self.server.wait(timeout=30)
            self.server = None


@pytest.fixture
def load_env(subprocess_env, settings, data_dir):
    """``subprocess_env``; on S3 pointed (with this process's storage) at a moto process."""
    if TEST_STORAGE != "s3":
        yield subprocess_env
        return
    s3 = MotoProcess()
    try:
        yield {
            **subprocess_env,
            **apply_storage(settings, "s3", data_dir, s3=s3, bucket=s3.new_bucket()),
        }
    finally:
        s3.stop()


def sha256_of_final(key):
    digest, size = hashlib.sha256(), 0
    for chunk in objects.iter_final(key):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def test_many_clients_upload_through_gunicorn_while_cleanup_and_probes_run(
    load_env, user, tmp_path
):
    files = load_files()
    token = create_token(user, name="load")[1]
    env = {
        **load_env,
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "8",
        "GUNICORN_TIMEOUT": "120",
        # The readiness budget (default 3 s) is raised: on this shared 2-core machine the
        # S3 stand-in (moto) competes for CPU with twenty clients and the server, so one
        # storage round trip can take seconds; real S3 answers in milliseconds.
        "PORTAL_HEALTH_CHECK_TIMEOUT_SECONDS": "10",
    }
    server = Gunicorn(env, tmp_path / "gunicorn.log")
    prober, cleanup = Prober(server.port), CleanupLoop(load_env)
    try:
        background = [Background(prober.probe, 0.2), Background(cleanup.run_once, 0.5)]
        try:
            stats, seconds = run_clients(server.port, token, files=files)
        finally:
            for job in background:
                job.stop()
    finally:
        server.stop()
    print(
        "\n"
        + summary_line(
            stats, seconds, files=files, probes=prober.results, cleanups=len(cleanup.runs)
        )
    )

    assert stats.failures == []
    assert stats.server_errors == 0, stats.statuses
    assert len(stats.files) == files
    # The server side of the same story: every access line, no 5xx, no ERROR record.
    records, lines = server.records()
    assert len(records) == len(lines), "every line gunicorn printed is a JSON record"
    assert [r for r in records if r["level"] in ("ERROR", "CRITICAL")] == []
    assert not [r for r in records if r.get("status_code", 0) >= 500]
    # Probes: many, all 200 (a failing /ready would also have logged an ERROR access line).
    assert prober.bad == []
    assert prober.results[("/ready", 200)] >= 5 and prober.results[("/health", 200)] >= 5
    # Cleanup ran during the load, and every run ended well (0: done or skipped).
    assert len(cleanup.runs) >= 2
    assert [run for run in cleanup.runs if run[0] != 0] == []

    # Every file is stored with the client's sha256, and its object holds exactly those bytes.
    stored = {
        str(f.id): f for f in IngestFile.objects.filter(id__in=list(stats.files)).select_related()
    }
    assert len(stored) == files
    for file_id, (digest, size) in stats.files.items():
        file = stored[file_id]
        assert (file.status, file.sha256, file.size_bytes) == ("stored", digest, size)
        assert sha256_of_final(file.storage_key) == (digest, size)
    assert UploadSession.objects.filter(status="complete").count() == files
    assert UploadSession.objects.filter(status="aborted").count() == CLIENTS

    # One more cleanup after the load: nothing of an aborted or complete session keeps a
    # temp object (the runs during the load may have missed the last parts).
    cleanup.run_once()
    assert cleanup.runs[-1][0] == 0
    assert not UploadPart.objects.exclude(temp_key="").exists()
    assert list(storage.list_temp()) == []
    assert invariants.summarize(invariants.check_all()) == "0"
