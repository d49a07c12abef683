"""Pins (issue #31, round 4) for the settings' bounds (``boot.settings``)."""

from tests.test_settings import run_check

GIB = 1024**3


def test_a_chunk_minimum_above_five_gib_is_refused_as_out_of_bounds(tmp_path):
    """S3 parts are at most 5 GiB: a larger ``PORTAL_CHUNK_SIZE_MIN`` is refused by its own
    bound, quoting the value, before any cross-field rule runs."""
    limit = 5 * GIB
    at_limit = run_check({"PORTAL_CHUNK_SIZE_MIN": str(limit)}, tmp_path=tmp_path)
    assert "must be at most" not in at_limit.stderr  # (E001 may still object: min > default)
    refused = run_check({"PORTAL_CHUNK_SIZE_MIN": str(limit + 1)}, tmp_path=tmp_path)
    assert refused.returncode == 2
    assert f"PORTAL_CHUNK_SIZE_MIN='{limit + 1}': must be at most {limit}" in refused.stderr
