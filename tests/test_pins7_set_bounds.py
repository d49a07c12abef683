"""Each bounded setting of ``boot.settings`` at both of its bounds: the last value taken
and the first refused, with the bound the message quotes (a bound changed or dropped by a
slip would let an absurd value through, or refuse a sane one)."""

import pytest

from boot import config as v
from tests.settings_helpers import GIB, PROD, build

TIB = 1024**4
SMALLEST = "must be at least 0.001"
# (variable, lowest taken, first refused below, its rule, highest taken, first refused above)
BOUNDS = [
    ("DATABASE_CONNECT_TIMEOUT_SECONDS", "1", "0", "must be at least 1", "3600", "3601"),
    ("AWS_S3_MAX_ATTEMPTS", "1", "0", "must be at least 1", "100", "101"),
    ("AWS_S3_CONNECT_TIMEOUT_SECONDS", "0.001", "0.0009", SMALLEST, "3600", "3600.5"),
    ("AWS_S3_READ_TIMEOUT_SECONDS", "0.001", "0.0009", SMALLEST, "3600", "3600.5"),
    ("PORTAL_CLEANUP_BATCH_SIZE", "1", "0", "must be at least 1", "10000", "10001"),
    ("PORTAL_OUTBOX_MAX_ATTEMPTS", "1", "0", "must be at least 1", "1000", "1001"),
    ("PORTAL_MAX_OPEN_SESSIONS_PER_USER", "0", "-1", "must be at least 0", "10000000", "10000001"),
    ("PORTAL_SESSION_TTL_HOURS", "0.001", "0.0009", SMALLEST, "8760", "8760.5"),
    ("PORTAL_ORPHAN_GRACE_MINUTES", "0.001", "0.0009", SMALLEST, "525600", "525601"),
    ("PORTAL_FAILED_SESSION_RETENTION_DAYS", "0.001", "0.0009", SMALLEST, "36500", "36501"),
    ("PORTAL_OUTBOX_BASE_DELAY_SECONDS", "0.001", "0.0009", SMALLEST, "31536000", "31536001"),
    ("PORTAL_OUTBOX_MAX_DELAY_SECONDS", "0.001", "0.0009", SMALLEST, "31536000", "31536001"),
    ("PORTAL_RUNNER_TIMEOUT_SECONDS", "0.001", "0.0009", SMALLEST, "3600", "3600.5"),
    ("PORTAL_HEALTH_CHECK_TIMEOUT_SECONDS", "0.001", "0.0009", SMALLEST, "3600", "3600.5"),
    ("PORTAL_READY_CACHE_SECONDS", "0", "-0.5", "must be at least 0", "3600", "3600.5"),
    ("PORTAL_FINALIZE_WAIT_SECONDS", "0", "-0.5", "must be at least 0", "3600", "3600.5"),
    ("PORTAL_DRAIN_SECONDS", "0", "-0.5", "must be at least 0", "3600", "3600.5"),
]
# Sizes: no negative text is a size, so only the upper bound and a zero where 1 is least.
SIZES = [
    ("PORTAL_MAX_FILE_SIZE", "1", "0", "must be at least 1", "5TiB", str(5 * TIB + 1)),
    ("PORTAL_CHUNK_SIZE", "1", "0", "must be at least 1", "5GiB", str(5 * GIB + 1)),
    ("PORTAL_CHUNK_SIZE_MAX", "1", "0", "must be at least 1", "5GiB", str(5 * GIB + 1)),
    ("PORTAL_MAX_PENDING_BYTES_PER_USER", "0", None, None, "1024TiB", str(1024 * TIB + 1)),
    ("PORTAL_MIN_FREE_BYTES", "0", None, None, "1024TiB", str(1024 * TIB + 1)),
    ("PORTAL_FREE_SPACE_RESERVE_BYTES", "0", None, None, "1024TiB", str(1024 * TIB + 1)),
]
MAXIMA = {
    "DATABASE_CONNECT_TIMEOUT_SECONDS": 3600,
    "AWS_S3_MAX_ATTEMPTS": 100,
    "PORTAL_CLEANUP_BATCH_SIZE": 10000,
    "PORTAL_OUTBOX_MAX_ATTEMPTS": 1000,
    "PORTAL_MAX_OPEN_SESSIONS_PER_USER": 10**7,
    "PORTAL_SESSION_TTL_HOURS": 8760,
    "PORTAL_ORPHAN_GRACE_MINUTES": 525600,
    "PORTAL_FAILED_SESSION_RETENTION_DAYS": 36500,
    "PORTAL_OUTBOX_BASE_DELAY_SECONDS": 31536000,
    "PORTAL_OUTBOX_MAX_DELAY_SECONDS": 31536000,
    "PORTAL_DRAIN_SECONDS": 3600.0,
    "PORTAL_MAX_FILE_SIZE": 5 * TIB,
    "PORTAL_CHUNK_SIZE": 5 * GIB,
    "PORTAL_CHUNK_SIZE_MAX": 5 * GIB,
    "PORTAL_MAX_PENDING_BYTES_PER_USER": 1024 * TIB,
    "PORTAL_MIN_FREE_BYTES": 1024 * TIB,
    "PORTAL_FREE_SPACE_RESERVE_BYTES": 1024 * TIB,
}
ALL = BOUNDS + SIZES


def refused(configuration, monkeypatch, tmp_path, env):
    with pytest.raises(v.SettingsError) as raised:
        build(configuration, monkeypatch, tmp_path, **env)
    return sorted(raised.value.problems)


def test_every_setting_takes_its_lowest_value(monkeypatch, tmp_path):
    """The documented floor itself is allowed: 0 turns a guardrail or wait off, one
    attempt, one byte, a millisecond."""
    s = build("Base", monkeypatch, tmp_path, **{row[0]: row[1] for row in ALL})
    for variable, lowest, *_ in ALL:
        assert s[variable] == float(lowest), variable


def test_every_setting_refuses_one_step_below_its_floor(monkeypatch, tmp_path):
    """A zero timeout, zero attempts or a negative wait is refused by name and rule."""
    rows = [row for row in ALL if row[2] is not None]
    problems = refused("Base", monkeypatch, tmp_path, {row[0]: row[2] for row in rows})
    assert problems == sorted(f"{row[0]}={row[2]!r}: {row[3]}" for row in rows)


def test_every_setting_takes_its_highest_value(monkeypatch, tmp_path):
    """The ceiling itself is allowed (S3's 5 GiB part and 5 TiB object, an hour's wait)."""
    s = build("Base", monkeypatch, tmp_path, **{row[0]: row[4] for row in ALL})
    for variable, maximum in MAXIMA.items():
        assert s[variable] == maximum, variable


def test_every_setting_refuses_one_step_above_its_ceiling(monkeypatch, tmp_path):
    """One past the ceiling is refused, the message quoting the ceiling."""
    problems = refused("Base", monkeypatch, tmp_path, {row[0]: row[5] for row in ALL})
    highest = {row[0]: row[4] for row in ALL}
    ceilings = {**{k: highest[k] for k in highest}, **{k: str(m) for k, m in MAXIMA.items()}}
    assert problems == sorted(
        f"{row[0]}={row[5]!r}: must be at most {ceilings[row[0]]}" for row in ALL
    )


def test_hsts_may_be_turned_off_but_not_negative(monkeypatch, tmp_path):
    """``SECURE_HSTS_SECONDS=0`` turns HSTS off in Prod; a negative age is refused."""
    assert (
        build("Prod", monkeypatch, tmp_path, **PROD, SECURE_HSTS_SECONDS="0")["SECURE_HSTS_SECONDS"]
        == 0
    )
    problems = refused("Prod", monkeypatch, tmp_path, {**PROD, "SECURE_HSTS_SECONDS": "-1"})
    assert problems == ["SECURE_HSTS_SECONDS='-1': must be at least 0"]
