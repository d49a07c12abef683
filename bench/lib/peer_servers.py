"""bench/peer.py's servers: the portal under gunicorn and the tus server under Node,
each in its own process group, with CPU seconds and peak RSS read from ``/proc``."""

import http.client
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.lib import procfs
from bench.lib.uploads import environment, free_port, manage

ROOT = Path(__file__).resolve().parent.parent.parent
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
PEER_PACKAGES = ("@tus/server@2.4.5", "@tus/file-store@2.1.1")

TUS_SERVER_JS = """
import { Server } from '@tus/server';
import { FileStore } from '@tus/file-store';

const [directory, port] = process.argv.slice(2);
const server = new Server({ path: '/files', datastore: new FileStore({ directory }) });
server.listen({ host: '127.0.0.1', port: Number(port) }, () => console.log('listening'));
"""


class ServerProcess:
    """A server started in its own process group; CPU and peak RSS read from ``/proc``."""

    def __init__(self, name, argv, *, cwd, env, log_path, ready_path):
        self.name = name
        self.port = free_port()
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*argv(self.port)],
            cwd=cwd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready(ready_path)

    def _wait_ready(self, path):
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("OPTIONS" if path.startswith("/files") else "GET", path)
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"{self.name} did not start; see {self.log_path}")
                time.sleep(0.2)

    def pids(self):
        return [self.proc.pid, *procfs.children(self.proc.pid)]

    def cpu(self):
        """{pid: CPU seconds so far} for the server's processes."""
        return {pid: procfs.cpu_seconds(pid) for pid in self.pids()}

    def peak_rss(self):
        return {pid: procfs.peak_rss_kb(pid) / 1024 for pid in self.pids()}

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


def cpu_used(before, after):
    """(summed over processes, the largest single process) CPU seconds between snapshots."""
    used = [after[pid] - before.get(pid, 0.0) for pid in after]
    return sum(used), max(used, default=0.0)


def install_peer(workdir):
    """npm-install the pinned tus packages into ``workdir``; False when node/npm are missing."""
    if not (shutil.which("node") and shutil.which("npm")):
        return False
    (workdir / "package.json").write_text('{"private": true, "type": "module"}\n')
    result = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", *PEER_PACKAGES],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        sys.exit(f"npm install {' '.join(PEER_PACKAGES)} failed:\n{result.stderr}")
    (workdir / "tus_server.mjs").write_text(TUS_SERVER_JS)
    return True


def installed_versions(workdir):
    versions = {}
    for name in ("@tus/server", "@tus/file-store", "@tus/utils", "srvx"):
        manifest = workdir / "node_modules" / name / "package.json"
        if manifest.exists():
            versions[name] = json.loads(manifest.read_text())["version"]
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return node, versions


def start_peer(workdir, store):
    store.mkdir()
    return ServerProcess(
        "tus server",
        lambda port: ["node", "tus_server.mjs", str(store), str(port)],
        cwd=workdir,
        env={k: v for k, v in os.environ.items() if not k.startswith("DEBUG")},
        log_path=workdir / "tus.log",
        ready_path="/files",
    )


def portal_settings(items):
    """``--portal-setting`` values as a dict; a malformed one ends the run with its name."""
    settings = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("PORTAL_"):
            sys.exit(f"--portal-setting {item!r}: expected PORTAL_NAME=VALUE")
        settings[name] = value
    return settings


def start_portal(data_dir, extra_args, settings=None):
    for root in ("temp", "final"):  # the storage roots, as an install creates them
        (data_dir / root).mkdir(exist_ok=True)
    env = environment(data_dir)
    env.update(settings or {})
    for name in ("WEB_CONCURRENCY", "GUNICORN_THREADS"):
        env.pop(name)  # what gunicorn.conf.py chooses, unless the environment says
        if name in os.environ:
            env[name] = os.environ[name]
    manage(env, "migrate", "--no-input")
    token = manage(env, "portal_create_token", "bench", "--create-user")
    server = ServerProcess(
        "gunicorn",
        lambda port: [
            GUNICORN,
            "-c",
            str(ROOT / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{port}",
            *extra_args,
        ],
        cwd=ROOT,
        env=env,
        log_path=data_dir.parent / "gunicorn.log",
        ready_path="/api/v1/uploads/sessions",
    )
    return server, token


def gunicorn_settings(extra_args):
    """The worker class, workers and threads gunicorn.conf.py (and the arguments) give."""
    code = (
        "import sys; from gunicorn.app.wsgiapp import WSGIApplication as A\n"
        "sys.argv = ['gunicorn', '-c', sys.argv[1], *sys.argv[2:]]\n"
        "c = A().cfg; print(c.worker_class_str, c.workers, c.threads)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "gunicorn.conf.py"), *extra_args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip() or "?"
