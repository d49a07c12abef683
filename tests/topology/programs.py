"""The real programs of the production topology, started on 127.0.0.1 for one test.

``Gunicorn`` runs ``gunicorn -c gunicorn.conf.py`` (the Prod configuration unless told
otherwise), ``Nginx`` runs ``deploy/nginx/portal.conf`` and ``HAProxy`` runs
``deploy/haproxy/haproxy.cfg``: the shipped files, with only their addresses, ports and
paths substituted (``render`` fails when a text to substitute is no longer in the file,
so the tests cannot silently drift from it). ``TcpProxy`` stands between an instance and
PostgreSQL so a test can cut that one instance's database. Every process is stopped by
the fixture or ``with`` block that started it; every wait has a deadline.
"""

import contextlib
import csv
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, MotoS3, free_port

GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
MOTO_SERVER = str(ROOT / ".venv" / "bin" / "moto_server")
NGINX_CONF = ROOT / "deploy" / "nginx" / "portal.conf"
HAPROXY_CFG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
MIME_TYPES = "/etc/nginx/mime.types"
SERVER_NAME = "portal.example.com"
START_SECONDS = 30


def require(program):
    """The path of a Debian program; skip when missing, but fail on CI (``CI=true``)."""
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
    if path:
        return path
    message = f"{program} is not installed (apt-get install {program})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; .ci/run installs it")
    pytest.skip(message)


def render(source, replacements, target):
    """Write ``source`` to ``target`` with each regex replaced; each must match."""
    text = Path(source).read_text()
    for pattern, replacement in replacements:
        text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
        assert count, f"{pattern!r} no longer occurs in {source}: update the test"
    Path(target).write_text(text)
    return Path(target)


def wait_for(predicate, timeout, what, interval=0.05):
    """Poll ``predicate`` until it returns a true value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def http_get(port, path, *, host="127.0.0.1", headers=None, timeout=5):
    """(status, headers, body) of one GET on a fresh plain-HTTP connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host, **(headers or {})})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def port_open(port):
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


class Process:
    """A subprocess writing stdout and stderr to one log file."""

    def __init__(self, argv, log_path, env=None, cwd=ROOT):
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in wait_stopped)
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def send(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait_stopped(self, timeout):
        """Exit code, killing the process if it outlives ``timeout``."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.proc.args[0]} did not stop within {timeout} s") from None
        finally:
            self._log.close()

    def stop(self, sig=signal.SIGTERM, timeout=15):
        self.send(sig)
        with contextlib.suppress(AssertionError):
            return self.wait_stopped(timeout)

    def output(self):
        return self.log_path.read_text(errors="replace")

    def wait_started(self, predicate, timeout, what):
        """``wait_for`` the process to serve; kill it if it does not."""
        try:
            wait_for(predicate, timeout, what)
        except BaseException:
            self.stop(signal.SIGKILL, timeout=5)
            raise


class Gunicorn(Process):
    """``gunicorn -c gunicorn.conf.py`` on ``port``; waits until ``/health`` answers 200."""

    def __init__(self, env, log_path, port=None):
        self.port = port or free_port()
        super().__init__(
            [GUNICORN, "-c", str(ROOT / "gunicorn.conf.py")],
            log_path,
            env={**env, "HOST": "127.0.0.1", "PORT": str(self.port)},
        )
        self.wait_started(self._serving, START_SECONDS, f"gunicorn on {self.port}")

    def _serving(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"gunicorn exited: {self.output()[-3000:]}")
        try:
            return http_get(self.port, "/health", timeout=2)[0] == 200
        except OSError:
            return False

    def records(self):
        """Every JSON record gunicorn printed (its own, Django's, the portal's)."""
        return [json.loads(line) for line in self.output().splitlines() if line.startswith("{")]


def prod_env(base_env, **extra):
    """The Prod configuration behind a proxy, as deploy/ and docs/topology.md set it up."""
    env = {k: v for k, v in base_env.items() if not k.startswith("GUNICORN_")}
    env.update(
        {
            "DJANGO_CONFIGURATION": "Prod",
            "SECRET_KEY": "topology-test-secret-key-not-for-production",
            "ALLOWED_HOSTS": SERVER_NAME,
            "PORTAL_BEHIND_PROXY": "true",
            "PORTAL_LOG_FORMAT": "json",
            "PORTAL_LOG_LEVEL": "info",
            "WEB_CONCURRENCY": "2",
            # Stopping a server a test no longer needs: no balancer to leave (the drain
            # tests set their own).
            "PORTAL_DRAIN_SECONDS": "0",
        }
    )
    env.update(extra)
    return env


class TlsCert:
    """A self-signed certificate for ``portal.example.com`` and 127.0.0.1 (openssl CLI)."""

    def __init__(self, directory):
        openssl = require("openssl")
        self.cert = Path(directory) / "portal.pem"
        self.key = Path(directory) / "portal.key"
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "2", "-subj", f"/CN={SERVER_NAME}",
             "-addext", f"subjectAltName=DNS:{SERVER_NAME},IP:127.0.0.1",
             "-keyout", str(self.key), "-out", str(self.cert)],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip

    def client_context(self):
        context = ssl.create_default_context(cafile=str(self.cert))
        context.check_hostname = False  # the certificate names portal.example.com
        return context


class Nginx(Process):
    """``deploy/nginx/portal.conf`` included from a minimal nginx.conf, in a temp prefix."""

    def __init__(self, directory, *, upstream_port, cert, static_root=None):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.http_port, self.https_port = free_port(), free_port()
        self.access_log = self.dir / "portal.access.log"
        replacements = [
            (r"server 127\.0\.0\.1:8000;", f"server 127.0.0.1:{upstream_port};"),
            (r"^    listen 80;", f"    listen 127.0.0.1:{self.http_port};"),
            (r"^    listen 443 ssl;", f"    listen 127.0.0.1:{self.https_port} ssl;"),
            (r"^    listen \[::\]:\d+( ssl)?;\n", ""),  # loopback IPv4 only in tests
            (r"/etc/ssl/certs/portal\.example\.com\.pem", str(cert.cert)),
            (r"/etc/ssl/private/portal\.example\.com\.key", str(cert.key)),
            (r"/var/log/nginx/", f"{self.dir}/"),
            (r"/srv/portal/var/static/", f"{static_root or self.dir / 'static'}/"),
        ]
        render(NGINX_CONF, replacements, self.dir / "portal.conf")
        user = "user root;\n" if os.geteuid() == 0 else ""
        temp_paths = "\n".join(
            f"  {kind}_temp_path {self.dir / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        # As Debian's /etc/nginx/nginx.conf does, whose http block includes conf.d/*.conf.
        mime = f"  include {MIME_TYPES};\n" if Path(MIME_TYPES).exists() else ""
        (self.dir / "nginx.conf").write_text(
            f"{user}worker_processes 1;\ndaemon off;\npid {self.dir / 'nginx.pid'};\n"
            f"error_log {self.dir / 'error.log'} warn;\n"
            "events { worker_connections 2048; }\n"
            f"http {{\n{temp_paths}\n{mime}  default_type application/octet-stream;\n"
            f"  access_log off;\n  include {self.dir / 'portal.conf'};\n}}\n"
        )
        nginx = require("nginx")
        argv = [nginx, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")]
        check = subprocess.run(
            [*argv, "-e", str(self.dir / "error.log"), "-t"], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stderr
        super().__init__([*argv, "-e", str(self.dir / "error.log")], self.dir / "nginx.out")
        ready = lambda: port_open(self.https_port) and port_open(self.http_port)  # noqa: E731
        self.wait_started(ready, 10, "nginx")

    def access_records(self):
        if not self.access_log.exists():
            return []
        return [json.loads(line) for line in self.access_log.read_text().splitlines()]


class HAProxy(Process):
    """``deploy/haproxy/haproxy.cfg`` in the foreground, balancing ``server_ports``."""

    def __init__(self, directory, server_ports):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port, self.stats_port = free_port(), free_port()
        self.socket = self.dir / "admin.sock"
        first, second = server_ports
        replacements = [
            (r"^    (chroot|user|group) .*\n", ""),
            (r"log /dev/log local0", "log stdout format raw local0"),
            (r"/run/haproxy/admin\.sock", str(self.socket)),
            (r"bind 127\.0\.0\.1:8080", f"bind 127.0.0.1:{self.port}"),
            (r"bind 127\.0\.0\.1:8404", f"bind 127.0.0.1:{self.stats_port}"),
            (r"10\.0\.0\.11:8000", f"127.0.0.1:{first}"),
            (r"10\.0\.0\.12:8000", f"127.0.0.1:{second}"),
        ]
        self.config = render(HAPROXY_CFG, replacements, self.dir / "haproxy.cfg")
        haproxy = require("haproxy")
        check = subprocess.run([haproxy, "-c", "-f", str(self.config)], capture_output=True)
        assert check.returncode == 0, check.stdout + check.stderr
        super().__init__([haproxy, "-db", "-f", str(self.config)], self.dir / "haproxy.out")
        self.wait_started(lambda: self.socket.exists() and port_open(self.port), 10, "haproxy")

    def check_settings(self):
        """``inter`` and ``fall`` of the shipped ``default-server`` line, in seconds."""
        line = re.search(r"^\s*default-server .*$", self.config.read_text(), re.MULTILINE)[0]
        inter = re.search(r"\binter (\d+(?:\.\d+)?)(ms|s)\b", line)
        seconds = float(inter[1]) / (1000 if inter[2] == "ms" else 1)
        return seconds, int(re.search(r"\bfall (\d+)", line)[1])

    def command(self, text):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket))
            sock.sendall(text.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self):
        """{server name: row of ``show stat``} for the portal backend."""
        lines = self.command("show stat").lstrip("# ").splitlines()
        rows = csv.DictReader(line for line in lines if line)
        return {
            row["svname"]: row
            for row in rows
            if row["pxname"] == "portal_app" and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def status(self, server):
        return self.servers()[server]["status"]

    def wait_status(self, server, wanted, timeout):
        """Poll the stats socket every 20 ms; the monotonic time the status was seen."""
        wait_for(lambda: self.status(server) == wanted, timeout, f"{server} {wanted}", 0.02)
        return time.monotonic()


class TcpProxy:
    """A TCP relay on a fixed loopback port that a test stops (cut) and starts (restore).

    Stopping closes the listener and every relayed connection, as a dead network path
    or a stopped database would look to the instance behind it.
    """

    def __init__(self, target_port):
        self.target_port = target_port
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets = []
        self._listener = None

    def start(self):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self):
        with self._lock:
            sockets, self._sockets = self._sockets, []
            listener, self._listener = self._listener, None
        for sock in [listener, *sockets]:
            if sock is None:
                continue
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), 5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)


class MotoProcess(MotoS3):
    """A moto S3 server in a process of its own (the in-process one shares our GIL)."""

    def start(self, timeout=None):  # its own bounded wait below
        self.server = subprocess.Popen(
            [MOTO_SERVER, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: port_open(self.port), START_SECONDS, "moto_server")

    def stop(self):
        if self.server is not None:
            self.server.terminate()
            self.server.wait(timeout=30)
            self.server = None
