"""Real ``manage.py`` processes for the outage and concurrency tests.

``Command`` starts ``python manage.py ...`` as cron would and reads its stdout and stderr
as they come (a command that logs a lot never blocks on a full pipe), so a test can wait
for a progress line, break something, and read the JSON records and summary afterwards.
"""

import json
import subprocess
import threading
import time

from tests.conftest import PYTHON, ROOT


class Command:
    """``manage.py <args>`` as a subprocess; its output is read as it comes (never blocks)."""

    def __init__(self, env, *args):
        self.proc = subprocess.Popen(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout_lines, self.stderr_lines = [], []
        self._seen = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(stream, lines), daemon=True)
            for stream, lines in (
                (self.proc.stdout, self.stdout_lines),
                (self.proc.stderr, self.stderr_lines),
            )
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, lines):
        for line in stream:
            with self._seen:
                lines.append(line.rstrip("\n"))
                self._seen.notify_all()

    def wait_for_stderr(self, prefix, timeout=60):
        deadline = time.monotonic() + timeout
        with self._seen:
            while not any(line.startswith(prefix) for line in self.stderr_lines):
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"no {prefix!r} line: {self.stderr_lines[-20:]}")
                self._seen.wait(min(left, 0.1))

    def finish(self, timeout=120):
        code = self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(10)
        self.stdout = "\n".join(self.stdout_lines)
        self.lines = [json.loads(line) for line in self.stdout_lines if line.startswith("{")]
        return code

    def records(self, level=None, event=None):
        return [
            line
            for line in self.lines
            if "level" in line
            and (level is None or line["level"] == level)
            and (event is None or line.get("event") == event)
        ]

    def summary(self):
        [line] = [line for line in self.lines if "level" not in line]
        return line


def run_command(env, *args, timeout=120):
    command = Command(env, *args)
    return command.finish(timeout), command
