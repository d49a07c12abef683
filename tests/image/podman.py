"""The repo's Dockerfile built with podman and run without a container runtime.

No registry is reachable here and plain ``podman build``/``podman run`` cannot set cgroups
or rlimits in this sandbox, so:

- **the base** is Debian bookworm made with ``debootstrap`` (minbase, python3,
  python3-venv, ca-certificates), trimmed and imported with ``podman import``. It is cached
  in ``PORTAL_IMAGE_CACHE`` (default ``~/.cache/portal-image-base``) as ``<key>.tar``, the
  key a hash of the recipe below: a changed recipe makes a new base, an unchanged one is
  debootstrapped once per machine;
- **the wheels** of requirements.txt are downloaded on the host (whose pip trusts the
  sandbox's certificates), for the base's Python, into the same cache, and the build
  installs from them (``PIP_NO_INDEX``/``PIP_FIND_LINKS`` build args, a read-only volume);
- **the build** is ``podman build --isolation chroot --network host`` of the Dockerfile
  as published, with ``BASE_IMAGE`` pointing at the local base;
- **a run** mounts the image read-only (``podman image mount``) and starts its command in
  new mount and pid namespaces (``unshare``), chrooted as the image's ``USER``, with its
  ``Env`` and ``WorkingDir``: the command is pid 1 as in a container, the root filesystem is
  read-only, and only the data dir, ``/tmp`` and ``/dev/shm`` are writable (directories of
  the test, so it can see what was written). The network is the host's: bind 127.0.0.1.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT

BASE_SUITE = "bookworm"
BASE_PYTHON = "3.11"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
# What the base does not need: package lists and caches, docs, man pages, translations.
BASE_TRIM = (
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/log",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
)
MIRROR = "http://deb.debian.org/debian"
IMAGE = "localhost/portal-image-test:latest"
PROGRAMS = ("podman", "debootstrap", "unshare", "chroot")
# The data dir the Dockerfile creates and PORTAL_DATA_DIR names.
DATA_DIR = "/var/lib/portal"


def require_programs():
    """Skip when a program or root is missing; fail instead under ``CI=true``."""
    missing = [name for name in PROGRAMS if not shutil.which(name, path="/usr/bin:/usr/sbin")]
    problem = None
    if missing:
        problem = f"{', '.join(missing)} not installed (apt-get install podman debootstrap)"
    elif os.geteuid() != 0:
        problem = "building and running the image needs root (unshare, chroot, podman mount)"
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{problem}; .ci/run installs the programs and runs as root")
    pytest.skip(problem)


def cache_dir():
    path = Path(os.environ.get("PORTAL_IMAGE_CACHE", Path.home() / ".cache/portal-image-base"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def run(argv, *, timeout, what, **kwargs):
    """Run a program; fail with its output and ``what`` when it exits non-zero."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert proc.returncode == 0, (
        f"{what} failed (exit {proc.returncode}): {' '.join(map(str, argv))}\n"
        f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    )
    return proc.stdout


@contextlib.contextmanager
def locked(path):
    """One test run at a time builds what is cached under ``path``."""
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def base_key():
    recipe = {
        "suite": BASE_SUITE,
        "packages": BASE_PACKAGES,
        "trim": BASE_TRIM,
        "arch": platform.machine(),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def podman_image_exists(name):
    return subprocess.run(["podman", "image", "exists", name], timeout=60).returncode == 0


def ensure_base():
    """The base image's name; debootstrapped only when neither podman nor the cache has it."""
    key = base_key()
    name = f"localhost/portal-image-base:{key}"
    cache = cache_dir()
    tarball = cache / f"{key}.tar"
    with locked(cache / "build.lock"):
        if podman_image_exists(name):
            return name
        if not tarball.exists():
            _debootstrap(tarball)
        with open(tarball, "rb") as stream:
            run(["podman", "import", "-", name], stdin=stream, timeout=300, what="podman import")
    return name


def _debootstrap(tarball):
    with tempfile.TemporaryDirectory(dir=tarball.parent) as scratch:
        root = Path(scratch) / "root"
        run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
             BASE_SUITE, str(root), MIRROR],
            timeout=1200, what="debootstrap of the test base",
        )  # fmt: skip
        for relative in BASE_TRIM:
            for entry in (root / relative).iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        partial = tarball.with_suffix(".part")
        run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."],
            timeout=300, what="tar of the test base")  # fmt: skip
        partial.rename(tarball)


def ensure_wheels():
    """A directory with a wheel for every runtime requirement, for the base's Python."""
    requirements = (ROOT / "requirements.txt").read_bytes()
    arch = platform.machine()
    key = hashlib.sha256(requirements + f"{BASE_PYTHON} {arch}".encode()).hexdigest()[:16]
    wheels = cache_dir() / f"wheels-{key}"
    if (wheels / ".complete").exists():
        return wheels
    # pip takes platform tags literally: name every manylinux glibc up to bookworm's (2.36).
    platforms = [f"--platform=manylinux_2_{minor}_{arch}" for minor in range(17, 37)]
    run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
         f"--python-version={BASE_PYTHON}", *platforms, "-d", str(wheels),
         "-r", str(ROOT / "requirements.txt")],
        timeout=600, what="pip download of the runtime wheels",
    )  # fmt: skip
    (wheels / ".complete").touch()
    return wheels


@dataclass
class Image:
    """The built image: its name, inspected configuration and how long each step took."""

    name: str
    config: dict
    size_bytes: int
    seconds: dict = field(default_factory=dict)
    root: Path | None = None  # where ``mounted`` put its filesystem

    @property
    def user(self):
        """(uid, gid) of the image's ``USER``, which must be numeric and not root."""
        user = self.config.get("User", "")
        uid, _, gid = user.partition(":")
        assert uid.isdigit() and gid.isdigit() and int(uid) > 0 and int(gid) > 0, (
            f"the image's USER is {user!r}: it must be a numeric uid:gid other than root"
        )
        return int(uid), int(gid)


def build_image():
    """Build the repo's Dockerfile on the local base; the timings go in ``Image.seconds``."""
    started = time.monotonic()
    base = ensure_base()
    wheels = ensure_wheels()
    prepared = time.monotonic()
    run(
        ["podman", "build", "--isolation", "chroot", "--network", "host",
         "--volume", f"{wheels}:/wheels:ro", "--build-arg", f"BASE_IMAGE={base}",
         "--build-arg", "PIP_NO_INDEX=1", "--build-arg", "PIP_FIND_LINKS=/wheels",
         "--tag", IMAGE, str(ROOT)],
        timeout=1200, what="podman build of the Dockerfile",
    )  # fmt: skip
    built = time.monotonic()
    inspected = json.loads(run(["podman", "image", "inspect", IMAGE], timeout=60, what="inspect"))
    return Image(
        name=IMAGE,
        config=inspected[0]["Config"],
        size_bytes=inspected[0]["Size"],
        seconds={"base_and_wheels": prepared - started, "build": built - prepared},
    )


@contextlib.contextmanager
def mounted(image):
    """The image's root filesystem, read-only, for as long as the block runs."""
    root = run(["podman", "image", "mount", image.name], timeout=60, what="podman image mount")
    root = Path(root.strip())
    try:
        assert not os.access(root, os.W_OK), f"podman mounted the image writable at {root}"
        yield root
    finally:
        subprocess.run(["podman", "image", "umount", image.name], capture_output=True, timeout=60)


# Runs in the new namespaces as root, then becomes the image's user in the chroot.
_ENTER = """
set -e
root=$1 data=$2 tmp=$3 shm=$4 user=$5 group=$6 workdir=$7 data_dir=$8
shift 8
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --bind "$shm" "$root/dev/shm"
mount --bind "$tmp" "$root/tmp"
mount --bind "$data" "$root$data_dir"
exec chroot --userspec="$user:$group" --groups="$group" "$root" \
  /usr/bin/env -i -C "$workdir" "$@"
"""


class Sandbox:
    """Writable directories for one run of the image: the data dir, ``/tmp``, ``/dev/shm``."""

    def __init__(self, image, directory):
        self.image, self.root = image, image.root
        uid, gid = image.user
        self.data, self.tmp, self.shm = (Path(directory) / n for n in ("data", "tmp", "shm"))
        self.data.mkdir(mode=0o750)
        os.chown(self.data, uid, gid)
        for path in (self.tmp, self.shm):
            path.mkdir()
            path.chmod(0o1777)

    def argv(self, env, command=None):
        """The host command that runs ``command`` (default: the image's ``Cmd``) in it."""
        uid, gid = self.image.user
        image_env = dict(item.split("=", 1) for item in self.image.config["Env"])
        variables = [f"{k}={v}" for k, v in {**image_env, **env}.items()]
        return [
            "unshare", "--mount", "--propagation", "private", "--pid", "--fork",
            "--kill-child", "--", "/bin/sh", "-c", _ENTER, "enter",
            str(self.root), str(self.data), str(self.tmp), str(self.shm), str(uid), str(gid),
            self.image.config["WorkingDir"], DATA_DIR, *variables,
            *(command or self.image.config["Cmd"]),
        ]  # fmt: skip

    def run(self, env, command, timeout=120):
        """A command of the image to its end: CompletedProcess with text output."""
        argv = self.argv(env, command)
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_namespace(proc)
            raise AssertionError(f"{' '.join(command)} in the image ran over {timeout} s") from None
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)

    def start(self, env, log_path):
        """The image's default command in the background; ``ImageProcess``."""
        return ImageProcess(self.argv(env), log_path)

    def written_outside_data(self):
        """Paths left in ``/tmp`` and ``/dev/shm`` (the root filesystem is read-only)."""
        return sorted(str(p) for base in (self.tmp, self.shm) for p in base.rglob("*"))


class ImageProcess:
    """The image's process (pid 1 in its own pid namespace) with its output in a file."""

    def __init__(self, argv, log_path):
        self.log_path = Path(log_path)
        with open(self.log_path, "wb") as log:
            self.unshare = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    @property
    def pid(self):
        """The host pid of the image's command (``unshare``'s one child)."""
        children = Path(f"/proc/{self.unshare.pid}/task/{self.unshare.pid}/children")
        found = children.read_text().split()
        assert found, f"the image's process is not running:\n{self.output()[-3000:]}"
        return int(found[0])

    def output(self):
        return self.log_path.read_text(errors="replace")

    def send(self, sig):
        os.kill(self.pid, sig)

    def stop(self, timeout=15):
        """SIGKILL the image's process and everything in its namespace (cleanup only)."""
        kill_namespace(self.unshare, timeout)


def kill_namespace(unshare, timeout=15):
    """SIGKILL ``unshare``'s child, pid 1 of the namespace, which ends every process in it.

    ``unshare --kill-child`` alone would not do: the kernel forgets the parent-death signal
    when ``chroot --userspec`` changes the process's user.
    """
    if unshare.poll() is None:
        with contextlib.suppress(OSError, ValueError):
            for pid in child_pids(unshare.pid):
                os.kill(pid, signal.SIGKILL)
        unshare.kill()
        unshare.wait(timeout)


def process_ids(pid):
    """(uid, gid) of a process, as the kernel sees them: real, effective, saved, fs alike."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    uids, gids = set(status["Uid"].split()), set(status["Gid"].split())
    assert len(uids) == 1 and len(gids) == 1, f"process {pid}: Uid {uids}, Gid {gids}"
    return int(uids.pop()), int(gids.pop())


def child_pids(pid):
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()]
