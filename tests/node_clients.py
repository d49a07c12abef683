"""The npm tus clients (tus-js-client, Uppy) in .cache/node (gitignored), installed from
tests/tus_clients/package.json when missing or stale; the ``node_modules`` fixture
(``tests/fixtures.py``) installs them once per run.

A client that is not installed skips the test locally and fails it under ``CI=true``."""

import fcntl
import os
import shutil
import subprocess

import pytest

from tests.basics import ROOT

NODE_DIR = ROOT / ".cache" / "node"
CLIENTS = ROOT / "tests" / "tus_clients"


def missing(message):
    """Skip locally; fail in CI, which installs every client."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _npm_install(npm, package, installed):
    shutil.copy(package, installed)
    result = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode:
        installed.unlink()
        missing(f"npm install in {NODE_DIR} failed:\n{result.stderr[-2000:]}")


def install_node_clients():
    """The npm clients in .cache/node (gitignored), installed from package.json if needed."""
    npm = shutil.which("npm")
    if not npm or not shutil.which("node"):
        missing("node and npm are needed for the tus-js-client and Uppy tests")
    package = CLIENTS / "package.json"
    installed = NODE_DIR / "package.json"
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    with open(NODE_DIR / ".install.lock", "w") as lock:  # one installer (pytest-xdist)
        fcntl.flock(lock, fcntl.LOCK_EX)
        fresh = installed.exists() and installed.read_bytes() == package.read_bytes()
        if not fresh or not (NODE_DIR / "node_modules").is_dir():
            _npm_install(npm, package, installed)
        for script in CLIENTS.glob("*.mjs"):  # next to node_modules, where imports resolve
            copy = NODE_DIR / script.name
            if not copy.exists() or copy.read_bytes() != script.read_bytes():
                shutil.copy(script, copy)  # never rewritten while another worker runs it
    return NODE_DIR
