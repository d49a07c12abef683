"""``deploy/cron``: the crontab parses, and each of its lines, run as cron would, works.

Each line's command runs through ``sh -c`` with cron's bare environment plus a test
environment file (the test database and storage), the project path of this checkout
instead of ``/srv/portal``, and a real local HTTP server as the runner.
"""

import http.server
import json
import socket
import subprocess
import threading
from datetime import datetime
from itertools import pairwise

import pytest
from croniter import croniter

from portal.models import JobRun
from tests.conftest import ROOT
from tests.cron_helpers import CRON_DIR, crontab_entries

WRAPPER = CRON_DIR / "portal-job"
INSTALLED_ROOT = "/srv/portal"


def test_crontab_parses_with_the_schedules_of_the_design():
    entries = {
        command.split()[1]: (schedule, user) for schedule, user, command in crontab_entries()
    }
    assert set(entries) == {"portal_cleanup", "portal_dispatch", "portal_finalize"}
    start = datetime(2026, 1, 1, 0, 0, 30)
    for job, minutes in (("portal_cleanup", 15), ("portal_dispatch", 1), ("portal_finalize", 1)):
        schedule, user = entries[job]
        assert croniter.is_valid(schedule)
        assert user == "portal"
        times = croniter(schedule, start)
        fires = [times.get_next(datetime) for _ in range(4)]
        assert {(b - a).total_seconds() for a, b in pairwise(fires)} == {minutes * 60}
    for _, _, command in crontab_entries():
        assert command.startswith(f"{INSTALLED_ROOT}/deploy/cron/portal-job ")


class Runner(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def runner():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Runner)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


@pytest.fixture
def cron_env(subprocess_env, runner, tmp_path):
    """Cron's bare environment plus an env file pointing at the test database and storage."""
    settings = {
        key: value
        for key, value in subprocess_env.items()
        if key.startswith(("PORTAL_", "AWS_", "DATABASE_URL", "DJANGO_"))
    }
    settings.update(
        {
            "PORTAL_RUNNER_ENDPOINT": runner,
            "PORTAL_RUNNER_AUTH_SECRET": "cron-test-secret",
            "PORTAL_PROJECT_DIR": str(ROOT),
            "PORTAL_LOCK_DIR": str(tmp_path),
        }
    )
    env_file = tmp_path / "portal.env"
    env_file.write_text("".join(f"{key}='{value}'\n" for key, value in settings.items()))
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PORTAL_ENV_FILE": str(env_file),
    }


def run_line(command, env):
    command = command.replace(INSTALLED_ROOT, str(ROOT), 1)
    return subprocess.run(
        ["sh", "-c", command], env=env, capture_output=True, text=True, timeout=120
    )


def json_lines(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("job", ["portal_cleanup", "portal_dispatch", "portal_finalize"])
def test_every_crontab_line_runs_and_prints_its_json_summary(job, cron_env):
    (command,) = [c for _, _, c in crontab_entries() if c.split()[1] == job]
    proc = run_line(command, cron_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = json_lines(proc.stdout)  # every stdout line is JSON (logs and the summary)
    summaries = [line for line in lines if "event" not in line and "level" not in line]
    assert len(summaries) == 1, lines
    if job == "portal_cleanup":
        assert summaries[0]["outcome"] == "ok"
    assert JobRun.objects.filter(job=job).exists()


def test_a_run_still_holding_the_host_lock_skips_with_exit_0(cron_env, tmp_path):
    lock = tmp_path / "portal-portal_cleanup.lock"
    holder = subprocess.Popen(["flock", str(lock), "sleep", "60"])
    try:
        for _ in range(100):
            if subprocess.run(["flock", "-n", str(lock), "true"]).returncode != 0:
                break
            threading.Event().wait(0.05)
        proc = run_line(f"{INSTALLED_ROOT}/deploy/cron/portal-job portal_cleanup --json", cron_env)
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 0
    assert proc.stdout == ""
    [skip] = json_lines(proc.stderr)  # by hand, the skip is said on stderr
    assert (skip["event"], skip["job"], skip["level"]) == ("job.skipped", "portal_cleanup", "INFO")
    assert str(lock) in skip["message"]
    assert not JobRun.objects.exists()


def test_a_lock_directory_that_cannot_be_used_is_exit_2_with_the_fix(cron_env, tmp_path):
    env_file = tmp_path / "portal.env"
    env_file.write_text(
        env_file.read_text() + f"PORTAL_LOCK_DIR='{tmp_path / 'no' / 'such' / 'dir'}'\n"
    )
    proc = run_line(f"{INSTALLED_ROOT}/deploy/cron/portal-job portal_cleanup --json", cron_env)
    assert proc.returncode == 2
    assert "cannot open the lock file" in proc.stderr and "install -d" in proc.stderr
    assert not JobRun.objects.exists()


def test_the_callers_variables_win_over_the_env_file(cron_env):
    env = {**cron_env, "PORTAL_LOG_FORMAT": "console", "PORTAL_LOG_LEVEL": "warning"}
    proc = run_line(f"{INSTALLED_ROOT}/deploy/cron/portal-job portal_cleanup --json", env)
    assert proc.returncode == 0, proc.stderr
    # The env file says json and info; the caller's warning level drops the INFO records,
    # so the summary line is all that is printed.
    [summary] = json_lines(proc.stdout)
    assert summary["command"] == "portal_cleanup"


def test_the_wrapper_passes_the_exit_code_through(cron_env):
    proc = run_line(
        f"{INSTALLED_ROOT}/deploy/cron/portal-job portal_cleanup --batch-size 0", cron_env
    )
    assert proc.returncode == 2
    assert "--batch-size" in proc.stderr


def test_an_unreadable_env_file_is_a_configuration_error(cron_env, tmp_path):
    env = {**cron_env, "PORTAL_ENV_FILE": str(tmp_path / "missing.env")}
    proc = run_line(f"{INSTALLED_ROOT}/deploy/cron/portal-job portal_cleanup", env)
    assert proc.returncode == 2
    assert "missing.env" in proc.stderr


class SyslogSocket:
    """A syslog socket (a Unix datagram socket, as /dev/log is) that keeps what it receives."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)

    def messages(self):
        received = []
        while True:
            try:
                received.append(self.sock.recv(1 << 20).decode())
            except TimeoutError:
                return received

    def records(self):
        """The JSON records, each from exactly one syslog message (never split)."""
        return [json.loads(m.split(": ", 1)[1]) for m in self.messages() if ": {" in m]

    def close(self):
        self.sock.close()


@pytest.fixture
def syslog(tmp_path):
    sock = SyslogSocket(tmp_path / "log.sock")
    yield sock
    sock.close()


def test_syslog_mode_delivers_whole_records_and_keeps_the_exit_code(cron_env, syslog):
    env = {**cron_env, "PORTAL_JOB_LOG": "syslog", "PORTAL_SYSLOG_SOCKET": str(syslog.path)}
    proc = run_line(f"{INSTALLED_ROOT}/deploy/cron/portal-job portal_cleanup --json", env)
    assert proc.returncode == 0, proc.stderr
    records = syslog.records()
    [finished] = [r for r in records if r.get("event") == "cleanup.finished"]
    [summary] = [r for r in records if r.get("command") == "portal_cleanup"]
    assert len(json.dumps(finished)) > 1024  # longer than logger's default message size
    assert summary["outcome"] == "ok"

    bad = run_line(f"{INSTALLED_ROOT}/deploy/cron/portal-job portal_cleanup --only bogus", env)
    assert bad.returncode == 2
    assert any("--only" in message for message in syslog.messages())  # argparse, via syslog


def test_syslog_mode_without_a_socket_is_exit_2_before_the_job_runs(cron_env, tmp_path):
    env = {
        **cron_env,
        "PORTAL_JOB_LOG": "syslog",
        "PORTAL_SYSLOG_SOCKET": str(tmp_path / "no-syslog-here"),
    }
    proc = run_line(f"{INSTALLED_ROOT}/deploy/cron/portal-job portal_cleanup --json", env)
    assert proc.returncode == 2
    assert "not a syslog socket" in proc.stderr
    assert not JobRun.objects.exists()
