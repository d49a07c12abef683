"""A disposable PostgreSQL server for tests that need a database to go away and come back.

Its own data directory (under a temp dir) and its own loopback port, trust auth, no
fsync; stopped and removed at the end. ``initdb`` and ``pg_ctl`` refuse to run as root,
so when the tests run as root they run as the ``postgres`` OS user on a directory that
user owns.
"""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path


def find_bindir():
    """The newest ``/usr/lib/postgresql/<version>/bin`` with initdb, or the one on PATH."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PgServer:
    """``start()``/``stop()`` as often as a test likes; ``url`` names its ``postgres`` db."""

    def __init__(self, port, bindir=None):
        self.port = port
        self.bindir = Path(bindir or find_bindir())
        self.root = Path(tempfile.mkdtemp(prefix="portal-pg-"))
        self.datadir = self.root / "data"
        self.sockdir = self.root / "sock"
        self.logfile = self.root / "server.log"
        self._as_postgres = os.geteuid() == 0
        self._initdb()

    @property
    def url(self):
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args, check=True, timeout=60):
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=timeout)

    def _initdb(self):
        self.sockdir.mkdir(parents=True)
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chmod(self.root, 0o755)
            for path in (self.root, self.sockdir):
                os.chown(path, user.pw_uid, user.pw_gid)
        self._run(
            "initdb", "-D", str(self.datadir), "-U", "postgres", "-A", "trust",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip

    def start(self):
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.sockdir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-o", options,
                  "-w", "-t", "30", "start")  # fmt: skip

    def stop(self):
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop", check=False)

    def destroy(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def available():
    bindir = find_bindir()
    if bindir is None:
        return False
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return False
    return True
