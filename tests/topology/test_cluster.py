"""Two instances behind HAProxy behind nginx, sharing PostgreSQL and S3 (a moto server).

    client --TLS--> nginx (portal.conf) --> HAProxy (haproxy.cfg) --> gunicorn portal1
                                                                  --> gunicorn portal2

Both gunicorns run gunicorn.conf.py in Prod behind the proxy. A client uploads files
without pause (each file's parts in parallel on three connections, no retries) while
the test:

- *failover*: cuts portal1's database (its DATABASE_URL goes through a TCP relay the test
  stops). HAProxy must mark it DOWN within fall x inter + 1 s of the shipped file, and
  from then on no request fails; once the relay is back, portal1 is UP again.
- *rolling restart*: sends SIGTERM to each instance in turn, waits for it to exit, starts
  it again and waits for HAProxy to see it UP before the next. Not one request may fail,
  and every file must be stored whole: each part counted once, the sha256 the client
  computed, the same bytes read back from S3.
"""

import hashlib
import signal
import threading
import time

import pytest
from django.db import connection

from portal.models import IngestFile, UploadPart, UploadSession
from tests import objects
from tests.conftest import apply_storage
from tests.topology.clients import Client, Uploader, loopback
from tests.topology.programs import Gunicorn, HAProxy, MotoProcess, Nginx, TcpProxy, prod_env

pytestmark = [pytest.mark.topology, pytest.mark.slow, pytest.mark.postgres]

WARM_UP_SECONDS = 2


@pytest.fixture
def shared(postgres_only, subprocess_env, settings, data_dir):
    """The environment both instances share: this test's PostgreSQL database, one bucket
    on a moto server of its own, Prod behind a proxy."""
    s3 = MotoProcess()
    try:
        env = {
            **subprocess_env,
            **apply_storage(settings, "s3", data_dir, s3=s3, bucket=s3.new_bucket()),
        }
        yield prod_env(env)
    finally:
        s3.stop()


def database_url(port=None):
    db = connection.settings_dict
    return (
        f"postgres://{db['USER'] or 'postgres'}@127.0.0.1:{port or db['PORT'] or 5432}/{db['NAME']}"
    )


class Cluster:
    """nginx -> HAProxy -> two gunicorns; ``envs`` is one environment per instance."""

    def __init__(self, tmp_path, envs, tls_cert, token):
        self.tmp_path, self.envs, self.tls_cert, self.token = tmp_path, envs, tls_cert, token
        self.instances, self.haproxy, self.nginx = [], None, None

    def __enter__(self):
        try:
            for number, env in enumerate(self.envs, 1):
                self.instances.append(Gunicorn(env, self.log(number)))
            ports = [i.port for i in self.instances]
            self.haproxy = HAProxy(self.tmp_path / "haproxy", ports)
            self.nginx = Nginx(
                self.tmp_path / "nginx", upstream_port=self.haproxy.port, cert=self.tls_cert
            )
            for name in self.names:
                self.haproxy.wait_status(name, "UP", 20)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for process in [self.nginx, self.haproxy, *self.instances]:
            if process is not None:
                process.stop()

    names = ("portal1", "portal2")

    def log(self, number):
        return self.tmp_path / f"portal{number}.log"

    def restart(self, index):
        """Start instance ``index`` again on its port (after it exited)."""
        old = self.instances[index]
        self.instances[index] = Gunicorn(self.envs[index], self.log(index + 1), port=old.port)

    def client(self, source):
        return Client(
            self.nginx.https_port, context=self.tls_cert.client_context(), source=source,
            token=self.token, timeout=30,
        )  # fmt: skip

    def requests_served(self, name):
        return int(self.haproxy.servers()[name]["stot"])


class Load:
    """``lanes`` uploaders in threads until ``stop()``.

    One is what the trials use: a client that never pauses, its parts in parallel. More
    would mostly load the S3 stand-in (moto, one Python process sharing this machine's
    two cores with everything else) until its readiness checks time out on every
    instance at once, which real S3 does not do.
    """

    def __init__(self, cluster, seed, lanes):
        self.stopped = threading.Event()
        self.uploaders = [
            Uploader(
                cluster.client, [loopback(20 + lane, n) for n in range(4)], seed=f"{seed}-{lane}"
            )
            for lane in range(lanes)
        ]
        self.threads = [
            threading.Thread(target=u.run, args=(self.stopped,)) for u in self.uploaders
        ]
        for thread in self.threads:
            thread.start()

    def stop(self):
        self.stopped.set()
        for thread in self.threads:
            thread.join(timeout=120)

    def outcomes(self):
        return [o for u in self.uploaders for o in u.outcomes]

    def failures(self, since=float("-inf")):
        return [f for u in self.uploaders for f in u.failures(since)]

    def files(self):
        return {k: v for u in self.uploaders for k, v in u.files.items()}


def assert_stored_whole(files):
    """Each file stored with the client's sha256, its parts counted once, its object intact."""
    stored = {str(f.id): f for f in IngestFile.objects.filter(id__in=list(files))}
    assert len(stored) == len(files)
    for file_id, (digest, size, session_id) in files.items():
        file = stored[file_id]
        assert (file.status, file.sha256, file.size_bytes) == ("stored", digest, size)
        session = UploadSession.objects.get(pk=session_id)
        parts = UploadPart.objects.filter(session=session)
        assert session.status == "complete"
        assert parts.count() == session.completed_parts == session.total_parts
        assert session.bytes_received == size == sum(p.size_bytes for p in parts)
        read_back = hashlib.sha256()
        for chunk in objects.iter_final(file.storage_key):
            read_back.update(chunk)
        assert read_back.hexdigest() == digest


def test_failover_when_one_instance_loses_its_database(shared, tls_cert, api_token, tmp_path):
    relay = TcpProxy(int(connection.settings_dict["PORT"] or 5432))
    relay.start()
    envs = [
        {
            **shared,
            "DATABASE_URL": database_url(relay.port),
            "PORTAL_DATA_DIR": str(tmp_path / "one"),
        },
        {**shared, "PORTAL_DATA_DIR": str(tmp_path / "two")},
    ]
    try:
        with Cluster(tmp_path, envs, tls_cert, api_token) as cluster:
            inter, fall = cluster.haproxy.check_settings()
            load = Load(cluster, "failover", lanes=1)
            try:
                time.sleep(WARM_UP_SECONDS)
                assert cluster.requests_served("portal1") > 0
                cut = time.monotonic()
                relay.stop()
                down = cluster.haproxy.wait_status("portal1", "DOWN", fall * inter + 10)
                served_at_down = cluster.requests_served("portal1")
                time.sleep(3)
                served_while_down = cluster.requests_served("portal1") - served_at_down
                relay.start()
                restored = time.monotonic()
                up = cluster.haproxy.wait_status("portal1", "UP", 20)
                time.sleep(WARM_UP_SECONDS)
                served_after_up = cluster.requests_served("portal1") - served_at_down
            finally:
                load.stop()
    finally:
        relay.stop()

    before_down = [f for f in load.failures() if f.started < down]
    print(
        f"\n[topology] failover: cut -> DOWN {down - cut:.2f} s (bound fall x inter + 1 = "
        f"{fall * inter + 1:g} s), restore -> UP {up - restored:.2f} s; requests "
        f"{len(load.outcomes())}, failed before DOWN {len(before_down)}, after DOWN "
        f"{len(load.failures(since=down))}; files stored {len(load.files())}"
    )
    assert down - cut <= fall * inter + 1
    # While portal1 is DOWN the balancer sends it nothing, so nothing fails. (Once it is UP
    # again, a request may meet a worker whose database gate has not retried yet.)
    assert [f for f in load.failures(since=down) if f.started < restored] == []
    assert served_while_down == 0
    assert served_after_up > 0
    assert len(load.files()) >= 4
    assert_stored_whole(load.files())


def test_rolling_restart_under_load_fails_no_request(shared, tls_cert, api_token, tmp_path):
    # > inter + (fall - 1) x fastinter = 3 s of the shipped file, with margin for checks
    # that wait behind busy worker threads on this shared machine.
    drain_seconds = 8
    envs = [
        {
            **shared,
            "PORTAL_DRAIN_SECONDS": str(drain_seconds),
            "PORTAL_DATA_DIR": str(tmp_path / name),
        }
        for name in Cluster.names
    ]
    timings = []
    with Cluster(tmp_path, envs, tls_cert, api_token) as cluster:
        load = Load(cluster, "rolling", lanes=1)
        try:
            time.sleep(WARM_UP_SECONDS)
            for index, name in enumerate(cluster.names):
                signalled = time.monotonic()
                cluster.instances[index].send(signal.SIGTERM)
                down = cluster.haproxy.wait_status(name, "DOWN", drain_seconds)
                assert cluster.instances[index].wait_stopped(drain_seconds + 35) == 0
                stopped = time.monotonic()
                cluster.restart(index)
                started = time.monotonic()
                up = cluster.haproxy.wait_status(name, "UP", 20)
                timings.append((name, down - signalled, stopped - signalled, up - started))
                time.sleep(1)
            time.sleep(1)
        finally:
            load.stop()

    failures, files = load.failures(), load.files()
    steps = "; ".join(
        f"{name}: out of rotation {out:.1f} s after SIGTERM, exited after {gone:.1f} s, "
        f"back {back:.1f} s after start"
        for name, out, gone, back in timings
    )
    print(
        f"\n[topology] rolling restart: requests {len(load.outcomes())}, failed "
        f"{len(failures)}, files stored {len(files)}; {steps}"
    )
    assert failures == []
    assert len(files) >= 6
    assert_stored_whole(files)
