"""Field order of a log line (``boot.logging``): a person reading console lines, or a JSON
line in a terminal, finds the event and the context fields first, in the documented order
(docs/logging.md's list), whatever order the code passed them in; a traceback follows the
first line; a field holding an exception names its type."""

import json
from pathlib import Path

import pytest

from portal.observability import bind

CONTEXT = {
    "request_id": "r1",
    "session_id": "s1",
    "part_number": 3,
    "file_id": "f1",
    "event_id": "e1",
    "job": "portal_dispatch",
    "run_id": "0123456789ab",
    "duration_ms": 7,
}
EXTRAS = {"zeta": "z", "alpha": "a"}


def log_scrambled(logger):
    """Context bound in reverse order, the event and extras passed after it."""
    with bind(**dict(reversed(CONTEXT.items()))):
        logger.info("hello", extra={**EXTRAS, "event": "outbox.dispatched"})


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_event_and_context_fields_come_first_in_their_documented_order(capture, fmt):
    logger, stream = capture(fmt=fmt)
    log_scrambled(logger)
    line = stream.getvalue().strip()
    if fmt == "json":
        keys = list(json.loads(line))
        assert keys[:4] == ["timestamp", "level", "logger", "message"]
        assert keys[4:] == ["event", *CONTEXT, *EXTRAS]
    else:
        pairs = line.split(" hello ", 1)[1].split(" ")
        assert [p.split("=", 1)[0] for p in pairs] == ["event", *CONTEXT, *sorted(EXTRAS)]


def test_an_exception_field_names_its_type_other_objects_read_as_text(capture):
    logger, stream = capture()
    logger.info("x", extra={"cause": ValueError("disk gone"), "where": Path("/srv/portal")})
    record = json.loads(stream.getvalue())
    assert (record["cause"], record["where"]) == ("ValueError: disk gone", "/srv/portal")


def test_a_console_line_keeps_its_fields_before_the_traceback(capture):
    """The fields belong to the first line (grep finds them with the message); the stack
    follows on its own lines. A message holding an X or a colon is not split."""
    logger, stream = capture(fmt="console")
    try:
        raise KeyError("missing")
    except KeyError:
        logger.exception("X-ray: failed", extra={"event": "outbox.gave_up", "job": "j"})
    first, *rest = stream.getvalue().splitlines()
    assert first.endswith(": X-ray: failed event=outbox.gave_up job=j"), first
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "KeyError: 'missing'"
