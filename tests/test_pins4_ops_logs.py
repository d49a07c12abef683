"""Pins (issue #31, round 4) for log redaction: the scheme stays, the credential goes."""

import logging

from portal.observability import REDACTED, RedactingFilter
from tests.log_helpers import json_line


def test_basic_credentials_are_redacted_but_the_scheme_is_kept():
    """An operator reading "Basic [REDACTED]" knows which kind of credential a client sent
    (a misconfigured proxy, a browser prompt) without the log holding it."""
    record = logging.LogRecord(
        "portal.x", logging.INFO, __file__, 1, "upstream sent %s", ("Basic dXNlcjpodW50ZXIy",), None
    )
    line = json_line(record, RedactingFilter())
    assert line["message"] == f"upstream sent Basic {REDACTED}"


def test_basic_credentials_with_every_base64_character_are_redacted_whole():
    """Base64 uses ``+`` and ``/`` too (about one credential in three has one): none of
    the credential may stay after its first such character, padding included."""
    import base64

    credential = base64.b64encode(b"\xfb\xff\xbf:s3cr\xfft>?!").decode()
    assert "+" in credential and "/" in credential and credential.endswith("=")
    record = logging.LogRecord(
        "portal.x", logging.INFO, __file__, 1, "upstream sent %s", (f"Basic {credential}",), None
    )
    line = json_line(record, RedactingFilter())
    assert line["message"] == f"upstream sent Basic {REDACTED}"
