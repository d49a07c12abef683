"""Pins (issue #31, round 4) for the settings' bounds (``boot.settings``)."""

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from tests.settings_helpers import run_check

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


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("Zq8xW3r", "This password is too short. It must contain at least 8 characters."),
        ("password123", "This password is too common."),
    ],
)
def test_staff_passwords_must_be_long_and_uncommon(password, reason):
    """Staff log in to the admin and /status with a password: the configured validators
    refuse a short or a well-known one (the admin's forms and ``changepassword`` ask them)."""
    with pytest.raises(ValidationError) as refused:
        validate_password(password)
    assert refused.value.messages == [reason]
