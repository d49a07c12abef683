"""Logs (``portal.observability``): the shortest redactable values are redacted, and every
command run's lines carry a run id of the documented shape."""

import logging
import re

from django.core.management import call_command

from portal.observability import ContextFilter


def test_an_eight_character_value_is_redacted_whole(json_capture):
    """8 characters is the shortest secret scrubbed by value and the shortest bearer header
    ("Bearer x"): a field holding exactly that must not reach the log in clear."""
    logger, records = json_capture(secrets=["s3cr3t-8"])
    logger.info("s3cr3t-8", extra={"header": "Bearer x", "note": "Bearer"})
    [record] = records()
    assert record["message"] == "[REDACTED]"
    assert (record["header"], record["note"]) == ("Bearer [REDACTED]", "Bearer")


def test_each_command_run_logs_under_a_run_id_of_twelve_hex_digits(db, portal_storage, caplog):
    """A command's run id (``portal.management.base``) has the same shape as a job run's:
    12 lowercase hex digits, a new one per run, on every line of the run."""
    caplog.handler.addFilter(ContextFilter())  # as the configured handler has
    run_ids = []
    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="portal"):
            call_command("portal_cleanup")
        ids = {r.run_id for r in caplog.records if hasattr(r, "run_id")}
        assert len(ids) == 1, ids
        run_ids.append(ids.pop())
    assert all(re.fullmatch("[0-9a-f]{12}", run_id) for run_id in run_ids), run_ids
    assert run_ids[0] != run_ids[1]


def test_deeply_nested_or_self_containing_values_are_cut_short_and_scrubbed(json_capture):
    """An extra field nested past five levels is logged as text (scrubbed like a message),
    so a value that contains itself cannot make logging recurse until it fails."""
    token = "pt_" + "A" * 20
    deep = [token]
    for _ in range(8):
        deep = [deep]
    loop = {"token": token, "items": []}
    loop["items"].append(loop)
    logger, records = json_capture()
    logger.info("nested", extra={"deep": deep, "loop": [loop]})
    [record] = records()

    level = record["deep"]
    for _ in range(6):  # lists down to depth 5 stay lists
        assert isinstance(level, list), level
        [level] = level
    assert isinstance(level, str) and token not in level and "pt_[REDACTED]" in level
    assert token not in str(record["loop"])
