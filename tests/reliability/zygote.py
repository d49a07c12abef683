"""Start ``manage.py`` commands in milliseconds: fork them from a process that imported Django.

A plain ``python manage.py portal_cleanup`` spends about half a second importing Django,
boto3 and the project before it does any work; a crash test that starts the command a
hundred times would spend most of its time there and would kill most runs before they
did anything. The zygote pays the imports once (``django.setup()`` with the test's
environment, no database connection, no storage client) and then forks one child per
request. Each child is a separate process that runs ``manage.py``'s own entry point
(``execute_from_command_line``) with its stdout and stderr in files: exactly the command
cron would start, minus the import time. The zygote also delivers the SIGKILL at the
requested moment after the fork (so the moment does not include a round trip to the
test) and reaps the child, so it never signals a process it has already reaped.

Protocol (JSON lines; the test side is ``Zygote`` below)::

    -> {"id": 1, "argv": ["portal_cleanup", "--json"], "out": PATH, "err": PATH,
        "kill_after": 0.25 | null, "travel_seconds": 13 | null}
    <- {"id": 1, "pid": 4242}
    <- {"id": 1, "exit": 0 | 1 | -9, "killed": false, "elapsed": 0.41}

``travel_seconds`` starts the child with its clock moved forward (time-machine): a run
"later", for example after a dead dispatcher's lease ran out.
"""

import contextlib
import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


# --- the zygote process --------------------------------------------------------------------


def _preload():
    """Import everything a command needs, without touching the database or storage."""
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    from configurations import importer

    importer.install()
    import django

    django.setup()
    import boto3  # noqa: F401
    import time_machine  # noqa: F401
    from configurations.management import execute_from_command_line  # noqa: F401

    import portal.management.commands.portal_cleanup
    import portal.management.commands.portal_dispatch
    import portal.storage.s3_backend  # noqa: F401


def _child(request):
    """In the forked child: redirect output, run the command, exit with its code."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for fd, path in ((1, request["out"]), (2, request["err"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    os.close(0)
    code = 1
    try:
        if request.get("travel_seconds"):
            import time_machine

            time_machine.travel(time.time() + request["travel_seconds"], tick=True).start()
        from configurations.management import execute_from_command_line

        execute_from_command_line(["manage.py", *request["argv"]])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # nothing left to report it to
                stream.flush()
    os._exit(code)


def serve():
    _preload()
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    running = {}  # pid -> [request id, started monotonic, kill deadline or None, killed]

    def send(message):
        reply.write(json.dumps(message) + "\n")

    stdin = sys.stdin.buffer
    pending = b""
    while True:
        now = time.monotonic()
        for pid, state in running.items():
            if state[2] is not None and not state[3] and now >= state[2]:
                os.kill(pid, signal.SIGKILL)
                state[3] = True
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            request_id, started, _, killed = running.pop(pid)
            send(
                {
                    "id": request_id,
                    "exit": os.waitstatus_to_exitcode(status),
                    "killed": killed,
                    "elapsed": time.monotonic() - started,
                }
            )
        deadlines = [s[2] for s in running.values() if s[2] is not None and not s[3]]
        timeout = 0.002 if running else 0.05
        if deadlines:
            timeout = max(0.0, min(timeout, min(deadlines) - time.monotonic()))
        ready, _, _ = select.select([stdin], [], [], timeout)
        if not ready:
            continue
        data = os.read(stdin.fileno(), 65536)
        if not data:
            for pid in running:
                os.kill(pid, signal.SIGKILL)
            return
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            request = json.loads(line)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _child(request)
            kill_after = request.get("kill_after")
            deadline = None if kill_after is None else time.monotonic() + kill_after
            running[pid] = [request["id"], time.monotonic(), deadline, False]
            send({"id": request["id"], "pid": pid})


# --- the test side -------------------------------------------------------------------------


@dataclass
class Outcome:
    """One command run: exit code (``-9`` when killed), whether the kill landed, output."""

    exit: int
    killed: bool
    elapsed: float
    stdout: str
    stderr: str

    def json_lines(self):
        lines = []
        for line in self.stdout.splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):  # a line cut short by SIGKILL
                    lines.append(json.loads(line))
        return lines

    def summary(self, command):
        """The ``--json`` summary line of ``command`` (a JSON line that is not a log record)."""
        found = [
            line
            for line in self.json_lines()
            if "level" not in line and (line.get("command", command) == command)
        ]
        assert len(found) == 1, f"exit {self.exit}: {self.stdout[-2000:]} {self.stderr[-2000:]}"
        return found[0]

    def records(self, event=None, level=None):
        return [
            line
            for line in self.json_lines()
            if "level" in line
            and (event is None or line.get("event") == event)
            and (level is None or line.get("level") == level)
        ]


def _take(path):
    """The text of a child's output file, then remove it (a child killed early has none)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    path.unlink()
    return text


class Zygote:
    """The test's handle on a zygote process started with ``env`` (a subprocess env)."""

    def __init__(self, env, workdir):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._next = 0
        self._answers = queue.Queue()
        with open(self.workdir / "zygote.err", "wb") as errors:
            self.proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve())],
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
                bufsize=1,
            )
        self._listener = threading.Thread(target=self._listen, daemon=True)
        self._listener.start()

    def _listen(self):
        for line in self.proc.stdout:
            self._answers.put(json.loads(line))
        self._answers.put(None)

    def run(self, *argv, kill_after=None, travel_seconds=None, timeout=180):
        """Run ``manage.py *argv`` in a forked child; SIGKILL it ``kill_after`` s after start."""
        self._next += 1
        out = self.workdir / f"{self._next}.out"
        err = self.workdir / f"{self._next}.err"
        request = {
            "id": self._next,
            "argv": list(argv),
            "out": str(out),
            "err": str(err),
            "kill_after": kill_after,
            "travel_seconds": travel_seconds,
        }
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        started = self._read()
        assert "pid" in started, started
        finished = self._read(timeout)
        outcome = Outcome(
            exit=finished["exit"],
            killed=finished["killed"],
            elapsed=finished["elapsed"],
            stdout=_take(out),
            stderr=_take(err),
        )
        return outcome

    def _read(self, timeout=30):
        try:
            answer = self._answers.get(timeout=timeout)
        except queue.Empty:
            answer = None
        if answer is None:
            errors = (self.workdir / "zygote.err").read_text(errors="replace")
            raise AssertionError(f"the zygote did not answer within {timeout} s: {errors[-3000:]}")
        return answer

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        self._listener.join(10)
        self.proc.stdout.close()


if __name__ == "__main__":
    serve()
