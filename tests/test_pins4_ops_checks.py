"""Pins (issue #31, round 4) for the system checks' messages: each quotes the values that
break the rule, so an operator can fix the environment without reading the code."""

from portal import checks as syschecks
from tests.settings_helpers import MIB


def test_chunk_size_max_above_the_file_size_quotes_both_values(clean):
    """portal.E002 names both the chunk maximum and the file-size maximum it exceeds."""
    clean.PORTAL_CHUNK_SIZE_MAX = 16 * MIB + 1
    [error] = syschecks.check_settings()
    assert (error.id, error.msg, error.hint) == (
        "portal.E002",
        f"PORTAL_CHUNK_SIZE_MAX ({16 * MIB + 1}) must not exceed PORTAL_MAX_FILE_SIZE "
        f"({16 * MIB}).",
        "Lower PORTAL_CHUNK_SIZE_MAX or raise PORTAL_MAX_FILE_SIZE.",
    )


def test_one_aws_key_without_the_other_names_both_settings(clean):
    """portal.E007: an access key id without its secret (or the reverse) is refused with
    the names of both settings and the way out (neither: boto3's own chain)."""
    clean.PORTAL_STORAGE = "s3"
    clean.AWS_STORAGE_BUCKET_NAME = "ingest"
    clean.AWS_ACCESS_KEY_ID = "AKIAEXAMPLE"
    clean.AWS_SECRET_ACCESS_KEY = ""
    [error] = syschecks.check_settings()
    assert (error.id, error.msg, error.hint) == (
        "portal.E007",
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together.",
        "Set both, or neither to use boto3's default chain (instance role, profile).",
    )
