"""deploy/prometheus/ with the real tools: promtool checks and unit-tests the rules and the
scrape config, and a real Prometheus server scrapes a real gunicorn for a few seconds.
"""

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.test import Client
from django.utils import timezone

from portal.metrics import collector
from portal.models import JobRun, OutboxEvent
from tests.conftest import ROOT, free_port
from tests.metrics_helpers import TOKEN, GunicornServer, names, program, scrape
from tests.outbox_helpers import make_events
from tests.processes import stop_process

DEPLOY = ROOT / "deploy" / "prometheus"


def promtool(*args, cwd=DEPLOY):
    return subprocess.run(
        [program("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def alert_rules():
    groups = yaml.safe_load((DEPLOY / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_checks_the_rules():
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass():
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_example_scrape_config_is_valid(tmp_path):
    token = tmp_path / "portal-metrics.token"
    token.write_text(TOKEN + "\n")
    config = (DEPLOY / "prometheus.yml").read_text()
    assert "/etc/prometheus/portal-metrics.token" in config
    (tmp_path / "prometheus.yml").write_text(
        config.replace("/etc/prometheus/portal-metrics.token", str(token))
    )
    shutil.copy(DEPLOY / "alerts.yml", tmp_path / "alerts.yml")
    result = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_both_ways():
    cases = yaml.safe_load((DEPLOY / "alerts_test.yml").read_text())["tests"]
    fires, quiet = set(), set()
    for case in cases:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in alert_rules()}
    assert alerts - fires == set(), "alerts without a case where they fire"
    assert alerts - quiet == set(), "alerts without a case where they stay quiet"


def github_anchor(heading):
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def test_every_alert_has_a_summary_and_a_runbook_that_exists():
    for rule in alert_rules():
        annotations = rule["annotations"]
        assert annotations.get("summary"), rule["alert"]
        path, _, anchor = annotations["runbook_url"].partition("#")
        document = ROOT / path
        assert document.is_file(), (rule["alert"], path)
        headings = [
            line.lstrip("#").strip()
            for line in document.read_text().splitlines()
            if line.startswith("#")
        ]
        assert anchor in {github_anchor(h) for h in headings}, (rule["alert"], anchor)


def test_the_rules_only_name_metrics_the_portal_exports(db, settings, data_dir, portal_storage):
    settings.PORTAL_METRICS_TOKEN = TOKEN
    settings.PORTAL_READY_CACHE_SECONDS = 0
    collector.collector.clear()
    client = Client()
    assert client.get("/ready").status_code == 200  # creates local roots, fills readiness
    exported = names(scrape(client)) | {"up"}
    used = set()
    for rule in alert_rules():
        unquoted = re.sub(r'"[^"]*"', "", rule["expr"])  # label values are not metrics
        used |= set(re.findall(r"\b(portal_[a-z_]+|up)\b", unquoted))
    if portal_storage["PORTAL_STORAGE"] == "s3":
        exported |= {f"portal_storage_{name}_bytes" for name in ("free", "size", "min_free")}
    assert used - exported == set()


# --- a real Prometheus server ---------------------------------------------------------------


class Prometheus:
    def __init__(self, tmp_path, target_port):
        self.port = free_port()
        token = tmp_path / "token"
        token.write_text(TOKEN + "\n")  # as an operator would write it, with a newline
        shutil.copy(DEPLOY / "alerts.yml", tmp_path / "alerts.yml")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(tmp_path / "alerts.yml")],
            "scrape_configs": [
                {
                    "job_name": "portal",
                    "authorization": {"type": "Bearer", "credentials_file": str(token)},
                    "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
                }
            ],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            [
                program("prometheus"),
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.log_path = tmp_path / "prometheus.log"

    def api(self, path, **params):
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)["data"]

    def wait_for(self, what, check, seconds=30):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log_path.read_text()
            try:
                found = check()
            except OSError:
                found = None
            if found:
                return found
            time.sleep(0.25)
        raise AssertionError(f"Prometheus never showed {what}:\n{self.log_path.read_text()}")

    def query(self, expr):
        return {
            json.dumps(r["metric"], sort_keys=True): float(r["value"][1])
            for r in self.api("query", query=expr)["result"]
        }

    def stop(self):
        stop_process(self.proc)
        self.log.close()


def seed_runs():
    now = timezone.now()
    counts = {"stale": {"sessions_expired": 4}, "orphans": {"objects_deleted": 16}}
    cleanup = JobRun.objects.create(
        job="portal_cleanup",
        outcome=JobRun.Outcome.OK,
        started_at=now - timedelta(minutes=3),
        finished_at=now - timedelta(minutes=2),
        counts=counts,
    )
    make_events(1, due=now - timedelta(days=1), status=OutboxEvent.Status.FAILED, attempts=12)
    return cleanup


@pytest.mark.slow
def test_a_real_prometheus_scrapes_the_portal_and_fires_an_alert(subprocess_env, tmp_path):
    program("prometheus")
    cleanup = seed_runs()
    server = GunicornServer(subprocess_env, tmp_path / "gunicorn.log")
    prometheus = None
    try:
        prometheus = Prometheus(tmp_path, server.port)
        target = prometheus.wait_for(
            "the portal target up",
            lambda: [t for t in prometheus.api("targets")["activeTargets"] if t["health"] == "up"],
        )
        assert target[0]["labels"]["job"] == "portal"
        assert target[0]["lastError"] == ""

        def one(expr):
            values = prometheus.wait_for(expr, lambda: prometheus.query(expr))
            [value] = values.values()
            return value

        success = one('portal_job_last_success_timestamp_seconds{command="portal_cleanup"}')
        assert success == pytest.approx(cleanup.finished_at.timestamp(), abs=1e-3)
        duration = one('portal_job_last_run_duration_seconds{command="portal_cleanup"}')
        assert duration == pytest.approx(60, abs=1e-3)
        assert one('portal_job_last_run_items{command="portal_cleanup", item="expired"}') == 4
        assert one('portal_job_last_run_items{command="portal_cleanup", item="deleted"}') == 16
        assert one('portal_outbox_events{status="failed"}') == 1
        assert one('portal_job_last_success_timestamp_seconds{command="portal_dispatch"}') == 0
        assert one('up{job="portal"}') == 1

        firing = prometheus.wait_for(
            "PortalOutboxEventsFailed firing",
            lambda: [
                a
                for a in prometheus.api("alerts")["alerts"]
                if a["labels"]["alertname"] == "PortalOutboxEventsFailed" and a["state"] == "firing"
            ],
        )
        assert firing[0]["annotations"]["runbook_url"].endswith("#51-a-stuck-outbox-event")
    finally:
        if prometheus is not None:
            prometheus.stop()
        server.stop()
    assert not [
        line for line in Path(prometheus.log_path).read_text().splitlines() if "level=error" in line
    ]
