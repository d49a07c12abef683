"""Real server and command processes for tests that read what they print.

``ServerProcess`` runs gunicorn (with the repo's ``gunicorn.conf.py``) or ``runserver`` on
a free loopback port with its output in files; ``json_lines`` enforces the
one-JSON-record-per-line rule; ``run_manage`` runs a ``manage.py`` command.
"""

import http.client
import json
import re
import secrets
import signal
import socket
import subprocess
import time
from datetime import datetime, timedelta

import pytest

from tests.basics import PYTHON, ROOT, free_port

SECRET_KEY = "sk-" + secrets.token_hex(24)
RUNNER_SECRET = "runner-" + secrets.token_hex(16)
AWS_SECRET = "aws/" + secrets.token_hex(20)
HEX32 = re.compile(r"[0-9a-f]{32}")


def new_token():
    return "pt_" + secrets.token_urlsafe(32)


def json_lines(text, *, where="output"):
    """Every line of ``text`` parsed as one JSON object (the one-record-per-line rule)."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"{where} line {number} is not JSON: {line[:300]!r}")
        assert isinstance(record, dict), line
        records.append(record)
    return records


def assert_record_contract(record):
    """timestamp (UTC ISO 8601), level, logger and message on every record."""
    stamp = datetime.fromisoformat(record["timestamp"])
    assert stamp.utcoffset() == timedelta(0), record
    assert record["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}, record
    assert record["logger"] and isinstance(record["message"], str), record


class ServerProcess:
    """A real server process on a free port; its stdout and stderr go to files."""

    def __init__(self, argv, env, tmp_path, port):
        self.port = port
        self.out_path = tmp_path / f"server-{port}.out"
        self.err_path = tmp_path / f"server-{port}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env={**env, "PYTHONUNBUFFERED": "1"}, stdout=out, stderr=err
            )
        self._wait_until_serving()

    @classmethod
    def gunicorn(cls, env, tmp_path):
        port = free_port()
        env = {
            **env,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "WEB_CONCURRENCY": "1",
            "GUNICORN_THREADS": "2",
        }
        return cls([PYTHON, "-m", "gunicorn", "-c", "gunicorn.conf.py"], env, tmp_path, port)

    @classmethod
    def runserver(cls, env, tmp_path):
        port = free_port()
        argv = [PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
        return cls(argv, env, tmp_path, port)

    def _wait_until_serving(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited early:\n{self.stdout()}\n{self.stderr()}")
            try:
                if self.request("GET", "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"server did not serve within {timeout}s:\n{self.stdout()}\n{self.stderr()}")

    def request(self, method, path, *, headers=None, body=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response, response.read()
        finally:
            connection.close()

    def raw(self, data):
        """Send bytes as they are (headers http.client refuses to send); return the status
        and the headers of the answer."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(data)
            received = b""
            # Until the server closes (send "Connection: close"): it logs before closing.
            while chunk := sock.recv(65536):
                received += chunk
        head = received.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
        return int(head[0].split()[1]), {k.lower(): v for k, v in headers.items()}

    def stop(self):
        stop_process(self.process)

    def stdout(self):
        return self.out_path.read_text(errors="replace")

    def stderr(self):
        return self.err_path.read_text(errors="replace")

    def output(self):
        return self.stdout() + self.stderr()

    def records(self):
        """All records (stdout and stderr), after asserting every line is JSON."""
        return json_lines(self.stdout(), where="stdout") + json_lines(self.stderr(), where="stderr")


def stop_process(process, timeout=20):
    """SIGTERM, then SIGKILL if it is still there after ``timeout`` seconds: no test leaves
    a server behind, and none waits forever for one."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_manage(env, *args, timeout=120, check=True):
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result
