"""The /ready gauges (``portal.health.views``) across worker processes: a scrape reports
the newest answer of any live worker, one sample per check, no ``pid`` label."""

import os
import subprocess

from prometheus_client import CollectorRegistry, generate_latest

from portal.metrics import multiproc
from tests.conftest import PYTHON, ROOT
from tests.metrics_helpers import parse, value

WORKER = r"""
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "boot.settings")
os.environ.setdefault("DJANGO_CONFIGURATION", "Test")
import configurations
configurations.setup()
from portal.health.views import CHECK_UP, CHECK_SECONDS, CHECKED_AT
up, seconds, at = (float(arg) for arg in sys.argv[1:4])
CHECK_UP.labels(check="database").set(up)
CHECK_SECONDS.labels(check="database").set(seconds)
CHECKED_AT.labels(check="database").set(at)
"""


def test_each_ready_gauge_shows_the_latest_answer_of_any_worker_without_a_pid(tmp_path):
    """Two workers answered /ready: the scrape shows the later answer (database down), as
    one sample per check; a ``pid`` label per worker would hide it from alerts on the check."""
    env = {**os.environ, multiproc.DIR_VARIABLE: str(tmp_path), "PYTHONPATH": str(ROOT)}
    for args in (("1", "2.5", "1000"), ("0", "0.01", "2000")):
        subprocess.run([PYTHON, "-c", WORKER, *args], env=env, check=True, timeout=60)
    registry = CollectorRegistry()
    multiproc.locked_collector(registry, str(tmp_path))
    samples = parse(generate_latest(registry).decode())
    ready = {key: got for key, got in samples.items() if key[0].startswith("portal_ready_")}
    assert ready == {
        ("portal_ready_check_up", frozenset({("check", "database")})): 0.0,
        ("portal_ready_check_duration_seconds", frozenset({("check", "database")})): 0.01,
        ("portal_ready_check_timestamp_seconds", frozenset({("check", "database")})): 2000.0,
    }
    assert value(samples, "portal_ready_check_up", check="database") == 0.0


def test_an_unavailable_check_reads_down_the_others_up(db, settings, data_dir):
    """/metrics reports the last /ready answer per check: the broken storage 0, the database
    and the other storage 1 (an alert on the check must fire for the one that failed)."""
    from django.test import Client

    from portal.health import executor as probes
    from portal.metrics import collector
    from tests.conftest import apply_storage
    from tests.metrics_helpers import TOKEN, scrape
    from tests.test_pins6_ops_clocks import break_temp

    settings.PORTAL_READY_CACHE_SECONDS = 0
    settings.PORTAL_METRICS_TOKEN = TOKEN
    collector.collector.clear()
    probes.results.clear()
    apply_storage(settings, "local", data_dir)
    break_temp(data_dir)
    client = Client()
    assert client.get("/ready").status_code == 503
    samples = scrape(client)
    assert {
        check: value(samples, "portal_ready_check_up", check=check)
        for check in ("database", "storage:portal_temp", "storage:portal_final")
    } == {"database": 1.0, "storage:portal_temp": 0.0, "storage:portal_final": 1.0}
