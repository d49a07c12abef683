"""Fixtures of the crash, outage, concurrency and race tests.

``zygote`` starts commands as forked children of a preloaded process (see ``zygote.py``);
``report`` prints the one-line summary each test ends with (visible with ``-s``);
``PORTAL_CRASH_TRIALS`` sets how many kills each crash test lands (default 50).
"""

import os
import time

import pytest
from django.db import connection

from tests.conftest import TEST_STORAGE
from tests.reliability.zygote import Zygote
from tests.seed import seed_owner

DEFAULT_TRIALS = 50
# On S3 every object goes through the in-process moto server (seeding a unit of the world
# costs about a second): the storage-heavy crash test kills fewer times there by default.
DEFAULT_S3_TRIALS = 20


def crash_trials(*, storage_heavy=False):
    default = DEFAULT_S3_TRIALS if storage_heavy and TEST_STORAGE == "s3" else DEFAULT_TRIALS
    return int(os.environ.get("PORTAL_CRASH_TRIALS", default))


def backend_label():
    return f"{connection.vendor}/{os.environ.get('PORTAL_TEST_STORAGE', TEST_STORAGE)}"


@pytest.fixture
def owner(transactional_db):
    return seed_owner("reliability-owner")


@pytest.fixture
def zygote(tmp_path):
    """``zygote(env)``: a zygote for commands with that environment; all closed at the end."""
    started = []

    def start(env):
        started.append(Zygote(env, tmp_path / f"zygote-{len(started)}"))
        return started[-1]

    yield start
    for process in started:
        process.close()


@pytest.fixture
def report():
    """``report(name, **figures)``: one line per test, and the test's wall time."""
    started = time.monotonic()

    def line(name, **figures):
        seconds = time.monotonic() - started
        shown = ", ".join(f"{key}={value}" for key, value in figures.items())
        print(f"\n[reliability] {name} [{backend_label()}]: {shown}, duration={seconds:.1f}s")

    return line
