"""The image built from the repo's Dockerfile, run as it would run in a container
(``tests/image/podman.py``: read-only root, the image's user, env, workdir and command,
pid 1 of its own namespace) against PostgreSQL and S3 (moto) on loopback, ``Prod``.

Built once per session; one test runs the whole life of a release in order (migrate,
serve, an upload from the host, the jobs, SIGTERM), because each step needs the last.
"""

import hashlib
import json
import secrets
import signal
import stat
import subprocess
import time

import pytest

from tests.conftest import PYTHON, ROOT, free_port, storage_env
from tests.image import podman
from tests.runner import RunnerServer
from tests.topology.programs import http_get, wait_for

pytestmark = [pytest.mark.image, pytest.mark.slow, pytest.mark.postgres]

SIZE_TARGET_BYTES = 250 * 1000**2  # podman's MB, uncompressed
DRAIN_SECONDS = 5  # room for a slow CI host to see the 503 and the 200 inside it
# gunicorn.conf.py's graceful_timeout is 30 s; an idle server stops at once after the drain.
STOP_SECONDS = DRAIN_SECONDS + 30
RUNNER_SECRET = secrets.token_urlsafe(32)
COMPILERS = ("cc", "gcc", "c++", "g++", "clang", "make")


def test_the_image_is_small_and_names_a_numeric_non_root_user(portal_image):
    size_mb = portal_image.size_bytes / 1000**2
    timings = {step: round(seconds, 1) for step, seconds in portal_image.seconds.items()}
    print(f"image {portal_image.name}: {size_mb:.0f} MB; seconds {timings}")
    assert portal_image.size_bytes <= SIZE_TARGET_BYTES, (
        f"the image is {size_mb:.0f} MB uncompressed, over the 250 MB target"
    )
    assert portal_image.user  # numeric, not root


def test_the_app_belongs_to_root_and_the_image_has_no_compiler(portal_image):
    root = portal_image.root
    writable = [
        str(path.relative_to(root))
        for top in ("srv/portal", "opt/venv")
        for path in (root / top).rglob("*")
        if not path.is_symlink()
        and (path.lstat().st_uid != 0 or path.lstat().st_mode & (stat.S_IWGRP | stat.S_IWOTH))
    ]
    assert writable == [], f"the app must be read-only to its user: {writable[:10]}"
    compilers = [f"{d}/{cc}" for d in ("usr/bin", "usr/local/bin") for cc in COMPILERS
                 if (root / d / cc).exists()]  # fmt: skip
    assert compilers == [], f"compilers in the final stage: {compilers}"


def image_env(database_url, s3, bucket, runner, port):
    """``Prod`` as an operator sets it for a container (on loopback: the host's network)."""
    return {
        **storage_env("s3", podman.DATA_DIR, s3=s3, bucket=bucket),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": database_url,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",  # no TLS proxy in front in this test
        "PORTAL_RUNNER_ENDPOINT": runner.url,
        "PORTAL_RUNNER_AUTH_SECRET": RUNNER_SECRET,
        "PORTAL_DRAIN_SECONDS": str(DRAIN_SECONDS),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "2",
    }


def run_in_image(sandbox, env, *command):
    """A ``manage.py`` command of the image; its stdout, or a failure naming it."""
    proc = sandbox.run(env, ["python", "manage.py", *command])
    assert proc.returncode == 0, (
        f"manage.py {' '.join(command)} in the image exited {proc.returncode}:\n"
        f"{proc.stdout[-2000:]}{proc.stderr[-3000:]}"
    )
    return proc.stdout


def upload_from_host(port, token, path, tmp_path):
    """``portal_upload`` from the checkout (a client on the host), token in $PORTAL_TOKEN."""
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_CONFIGURATION": "Test",
        "PORTAL_DATA_DIR": str(tmp_path / "client"),
        "PORTAL_TOKEN": token,
    }
    return subprocess.run(
        [PYTHON, "manage.py", "portal_upload", str(path), "--url", f"http://127.0.0.1:{port}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def summary(stdout):
    """The ``--json`` summary among a command's JSON lines (the one that is no log record)."""
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    found = [line for line in lines if "outcome" in line and "level" not in line]
    assert found, f"no JSON summary in:\n{stdout[-2000:]}"
    return found[-1]


def status(port, path):
    try:
        return http_get(port, path, timeout=5)[0]
    except OSError:
        return None


def assert_runs_as(pid, image):
    ids = podman.process_ids(pid)
    assert ids == image.user, f"process {pid} runs as uid:gid {ids}, the image says {image.user}"


def test_the_image_migrates_serves_an_upload_runs_the_jobs_and_drains_on_sigterm(
    portal_image, image_database, moto_s3, tmp_path
):
    sandbox_dir = tmp_path / "sandbox"
    sandbox_dir.mkdir()
    sandbox = podman.Sandbox(portal_image, sandbox_dir)
    bucket = moto_s3.new_bucket()
    port = free_port()
    with RunnerServer(secret=RUNNER_SECRET) as runner:
        env = image_env(image_database, moto_s3, bucket, runner, port)
        run_in_image(sandbox, env, "migrate", "--no-input")
        token = run_in_image(sandbox, env, "portal_create_token", "alice", "--create-user")
        server = sandbox.start(env, tmp_path / "gunicorn.log")
        try:
            wait_for(lambda: status(port, "/health") == 200 or server.unshare.poll() is not None,
                     60, "/health 200 from the image's gunicorn")  # fmt: skip
            assert server.unshare.poll() is None, f"gunicorn exited:\n{server.output()[-3000:]}"
            wait_for(lambda: status(port, "/ready") == 200, 30, "/ready 200 (PostgreSQL, S3)")
            assert status(port, "/static/admin/css/base.css") == 200, "collectstatic at build"

            master = server.pid
            workers = podman.child_pids(master)
            assert workers, "gunicorn forked no worker"
            for pid in (master, *workers):
                assert_runs_as(pid, portal_image)

            data = secrets.token_bytes(3 * 1024 * 1024 + 17)
            upload = tmp_path / "upload.bin"
            upload.write_bytes(data)
            sent = upload_from_host(port, token.strip(), upload, tmp_path)
            assert sent.returncode == 0 and sent.stdout.rstrip().endswith("OK"), (
                f"portal_upload exited {sent.returncode}:\n{sent.stdout}{sent.stderr}"
            )
            sha256 = hashlib.sha256(data).hexdigest()
            assert f"server sha256: {sha256}" in sent.stdout, sent.stdout
            stored = [o["Key"] for o in moto_s3.client().list_objects_v2(Bucket=bucket)
                      .get("Contents", []) if o["Key"].startswith("final/")]  # fmt: skip
            assert len(stored) == 1, f"final objects in the bucket: {stored}"
            body = moto_s3.client().get_object(Bucket=bucket, Key=stored[0])["Body"].read()
            assert hashlib.sha256(body).hexdigest() == sha256, "the object in S3 differs"

            dispatched = summary(run_in_image(sandbox, env, "portal_dispatch", "--json"))
            assert dispatched["delivered"] == 1, dispatched
            runner.wait_for_requests(1)
            event = runner.requests[0]
            assert event.signature_ok and event.json()["file"]["sha256"] == sha256, event.body
            cleaned = summary(run_in_image(sandbox, env, "portal_cleanup", "--json"))
            assert cleaned["outcome"] == "ok" and cleaned["failed"] == 0, cleaned

            assert_drains_then_stops(server, port)
        finally:
            server.stop()
    assert sandbox.written_outside_data() == [], "the image left files in /tmp or /dev/shm"


def assert_drains_then_stops(server, port):
    """SIGTERM to the image's process: /ready 503 while /health 200, then exit 0."""
    signalled = time.monotonic()
    server.send(signal.SIGTERM)
    wait_for(lambda: status(port, "/ready") == 503, DRAIN_SECONDS, "/ready 503 after SIGTERM")
    assert status(port, "/health") == 200, "/health must stay 200 while the instance drains"
    try:
        code = server.unshare.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"gunicorn still running {STOP_SECONDS} s after SIGTERM") from None
    stopped = time.monotonic() - signalled
    assert code == 0, f"gunicorn exited {code} after SIGTERM:\n{server.output()[-3000:]}"
    assert stopped >= DRAIN_SECONDS, f"stopped after {stopped:.1f} s, before the drain ended"
