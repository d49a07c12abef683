"""Slow clients: 200 connections trickling headers, 50 trickling part bodies and 200
trickling tus PATCH bodies, for 30 s.

Through nginx (deploy/nginx/portal.conf, TLS) in front of gunicorn (gunicorn.conf.py,
Prod, two gthread workers of four threads): every /health and /ready probe through nginx
answers 200 with a p99 under 100 ms (more only on a crowded machine: ``p99_limit_ms``),
and uploads started meanwhile complete, because nginx holds the slow requests and
gunicorn sees only complete ones, except tus bodies, which nginx streams and gunicorn
serves on its tus lane (``portal.health.lanes``), away from the API's and the probes'
threads. The same attack on gunicorn alone is run for 10 s and reported for contrast,
not asserted: there the tricklers hold gunicorn's API threads and uploads starve (the
probes have threads of their own, ``portal.health.lanes``).

The tricklers run in a process of their own (``tests.topology.slow_clients``, niced: they
stand for other machines) against nginx's HTTPS port; the probes (plain HTTP, a fresh
connection each, as a load balancer or monitor asks) and the uploads (HTTPS) run in this
one.
"""

import contextlib
import json
import os
import select
import subprocess
import threading
import time
from dataclasses import dataclass, field

import pytest

from portal.health.lanes import TUS_THREADS
from portal.models import TusUpload
from portal.services.sessions import create_session
from portal.services.tus import create_upload
from tests.conftest import PYTHON, ROOT
from tests.topology.clients import Client, Uploader, loopback, percentile
from tests.topology.programs import Gunicorn, Nginx, wait_for

pytestmark = [pytest.mark.topology, pytest.mark.slow]

TRIAL_SECONDS = 30  # the figure, asserted
CONTRAST_SECONDS = 10  # enough to show gunicorn alone starving; reported only
HEADER_TRICKLERS, BODY_TRICKLERS, TUS_TRICKLERS = 200, 50, 200
QUIET_SECONDS = 2  # probes before the attack, for contrast; reported only
PROBE_EVERY, PROBE_TIMEOUT = 0.1, 2.0
CHUNK = 256 * 1024
TUS_LENGTH = 1024 * 1024
PROXIED = {"X-Forwarded-Proto": "https"}  # what nginx adds, for gunicorn alone
P99_LIMIT_MS, P99_LIMIT_LOADED_MS = 100, 400


def p99_limit_ms():
    """100 ms, the target, unless other work crowds the machine (a load average over
    twice its CPUs: the trial alone makes about that): then this test's own probes
    wait for a CPU and measure the machine; the bound grows with the load, capped well
    under what a starved probe takes (its 2 s timeout, or a failure)."""
    load, cpus = os.getloadavg()[0], os.cpu_count() or 1
    return min(P99_LIMIT_LOADED_MS, max(P99_LIMIT_MS, P99_LIMIT_MS * load / (2 * cpus)))


@dataclass
class Probes:
    latencies: list = field(default_factory=list)
    failures: list = field(default_factory=list)

    def summary(self):
        ms = [1000 * s for s in self.latencies]
        return {
            "n": len(ms),
            "p50_ms": round(percentile(ms, 0.5), 1),
            "p99_ms": round(percentile(ms, 0.99), 1),
            "failed": len(self.failures),
        }


def probe_until(stop, connect, probes):
    """/health and /ready in turn every 100 ms, each on a fresh connection."""
    paths = ("/health", "/ready")
    count = 0
    while not stop.is_set():
        path = paths[count % 2]
        count += 1
        client = connect()
        started = time.monotonic()
        try:
            status = client.request("GET", path)[0]
        except OSError as exc:
            status = type(exc).__name__
        finally:
            client.close()
        probes.latencies.append(time.monotonic() - started)
        if status != 200:
            probes.failures.append((path, status))
        stop.wait(PROBE_EVERY)


def quiet_probes(probe, seconds):
    """Probes for ``seconds`` with nobody else on the server."""
    stop, probes = threading.Event(), Probes()
    prober = threading.Thread(
        target=probe_until, args=(stop, lambda: probe("127.0.9.1", PROBE_TIMEOUT), probes)
    )
    prober.start()
    stop.wait(seconds)
    stop.set()
    prober.join(timeout=PROBE_TIMEOUT + 5)
    return probes


def tus_uploads(user, count):
    """``count`` new tus uploads of 1 MiB, one for each tus trickler: their session ids."""
    return [create_upload(user, length=str(TUS_LENGTH), metadata="").pk for _ in range(count)]


def streamed(session_ids):
    """How many of these tus uploads kept bytes: their PATCH reached the portal while its
    client was still sending (nginx spooling a body would pass on none of it)."""
    return TusUpload.objects.filter(session_id__in=session_ids, tail_bytes__gt=0).count()


def run_trial(port, seconds, *, connect, probe, cafile, token, session_id, files, tus):
    """Tricklers on ``port`` for ``seconds``; probes and ``files`` uploads meanwhile."""
    attack = [PYTHON, "-m", "tests.topology.slow_clients", "--port", str(port)]
    attack += ["--seconds", str(seconds), "--token", token, "--session", str(session_id)]
    attack += ["--tus-uploads", ",".join(f"/api/v1/tus/{pk}" for pk in tus)]
    attack += ["--tus-length", str(TUS_LENGTH)]
    attack += ["--headers", str(HEADER_TRICKLERS), "--bodies", str(BODY_TRICKLERS)]
    attack += ["--cafile", cafile] if cafile else []
    tricklers = subprocess.Popen(attack, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        # Niced, they start last on a busy machine: a generous bound, still a bound.
        assert select.select([tricklers.stdout], [], [], 90)[0], "tricklers did not start"
        assert tricklers.stdout.readline().strip() == "ready"
        stop, probes = threading.Event(), Probes()
        prober = threading.Thread(
            target=probe_until, args=(stop, lambda: probe("127.0.9.1", PROBE_TIMEOUT), probes)
        )
        uploader = Uploader(
            lambda source: connect(source, 10),
            [loopback(10, n) for n in range(4)],
            seed=f"slow-{port}",
        )
        uploading = threading.Thread(target=uploader.run, args=(stop, files))
        prober.start()
        uploading.start()
        summary = json.loads(tricklers.communicate(timeout=seconds + 60)[0])
        stop.set()
        prober.join(timeout=PROBE_TIMEOUT + 5)
        uploading.join(timeout=60)
    finally:
        tricklers.kill()
        tricklers.wait()
    return probes, uploader, summary


def test_slow_clients_are_absorbed_by_nginx(prod, user, api_token, tls_cert, tmp_path):
    server = Gunicorn(prod, tmp_path / "gunicorn.log")
    nginx = None
    try:
        nginx = Nginx(tmp_path / "nginx", upstream_port=server.port, cert=tls_cert)
        spec = {
            "filename": "trickled.bin",
            "size_bytes": BODY_TRICKLERS * CHUNK,
            "chunk_size_bytes": CHUNK,
        }
        session, _ = create_session(user, spec)

        def through_nginx(source, timeout):
            return Client(
                nginx.https_port, context=tls_cert.client_context(), source=source,
                token=api_token, timeout=timeout,
            )  # fmt: skip

        def probe_nginx(source, timeout):
            # Plain HTTP, as a monitor or balancer inside the network probes nginx: a
            # TLS handshake per probe would measure this test's CPU, not the server.
            return Client(nginx.http_port, source=source, timeout=timeout)

        def to_gunicorn(source, timeout):
            return Client(
                server.port, source=source, token=api_token, timeout=timeout, headers=PROXIED
            )

        common = {"token": api_token, "session_id": session.pk, "files": 3}
        quiet = quiet_probes(probe_nginx, QUIET_SECONDS)
        tus = tus_uploads(user, TUS_TRICKLERS)
        probes, uploads, attack = run_trial(
            nginx.https_port, TRIAL_SECONDS, connect=through_nginx, probe=probe_nginx,
            cafile=str(tls_cert.cert), tus=tus, **common,
        )  # fmt: skip
        bare, bare_uploads, _ = run_trial(
            server.port,
            CONTRAST_SECONDS,
            connect=to_gunicorn,
            probe=to_gunicorn,
            cafile=None,
            tus=tus_uploads(user, TUS_TRICKLERS),
            **common,
        )
        # Bodies queued for a tus thread are read (and kept) once their turn comes.
        with contextlib.suppress(AssertionError):
            wait_for(lambda: streamed(tus) == TUS_TRICKLERS, 20, "the queued tus bodies")
        tus_streamed = streamed(tus)
    finally:
        if nginx is not None:
            nginx.stop()
        server.stop()

    figures, contrast, calm = probes.summary(), bare.summary(), quiet.summary()
    limit_ms = round(p99_limit_ms())
    print(
        f"\n[topology] slow clients ({HEADER_TRICKLERS} header + {BODY_TRICKLERS} body + "
        f"{TUS_TRICKLERS} tus tricklers): quiet nginx {QUIET_SECONDS} s: probes n={calm['n']} "
        f"p50 {calm['p50_ms']} ms p99 {calm['p99_ms']} ms; "
        f"through nginx {TRIAL_SECONDS} s: probes n={figures['n']} "
        f"p50 {figures['p50_ms']} ms p99 {figures['p99_ms']} ms (limit {limit_ms} ms, load "
        f"{os.getloadavg()[0]:.1f}) failed {figures['failed']}, uploads {len(uploads.files)}/3, "
        f"tus bodies streamed to gunicorn {tus_streamed}, "
        f"tricklers reconnected {attack['reopened']}; "
        f"gunicorn alone {CONTRAST_SECONDS} s: probes n={contrast['n']} "
        f"p50 {contrast['p50_ms']} ms p99 {contrast['p99_ms']} ms failed {contrast['failed']}, "
        f"uploads {len(bare_uploads.files)}/3 ({len(bare_uploads.failures())} failed requests)"
    )
    assert attack["opened"] == HEADER_TRICKLERS + BODY_TRICKLERS + TUS_TRICKLERS
    # nginx cut every header trickler off after client_header_timeout (10 s), at least
    # twice in 30 s; they came straight back.
    assert attack["reopened"] >= 2 * HEADER_TRICKLERS
    # nginx streamed the tus bodies to gunicorn (at least enough to fill both tus lanes).
    assert tus_streamed >= 2 * TUS_THREADS
    assert probes.failures == []
    assert figures["n"] >= TRIAL_SECONDS * 5
    assert figures["p99_ms"] < limit_ms, figures
    assert uploads.failures() == [] and len(uploads.files) == 3
