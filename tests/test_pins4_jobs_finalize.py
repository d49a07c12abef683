"""Pins for the jobs area, fourth round (issue #31): the text line ``portal_finalize``
prints without ``--json``."""

import re

from portal.models import UploadSession
from portal.services.finalize import MAX_ATTEMPTS
from tests.commands import run_command
from tests.finalize_helpers import dead_assembly


def test_the_text_line_puts_each_count_in_its_place(api, lock_holder):
    """Three assemblies taken over, two given up, one busy elsewhere: the operator's line
    reads 3, 2 and 1 in their places, not each other's numbers."""
    for data in (b"a" * 30, b"b" * 30, b"c" * 30):
        dead_assembly(api, data, 10)
    given_up = [dead_assembly(api, data, 10) for data in (b"e" * 30, b"f" * 30)]
    UploadSession.objects.filter(pk__in=given_up).update(assembly_attempts=MAX_ATTEMPTS)
    held = dead_assembly(api, b"d" * 30, 10)
    lock_holder(f"finalize:{held}")

    result = run_command("portal_finalize")

    assert result.code == 0, result.err
    assert re.fullmatch(
        r"portal_finalize: completed 3, failed 2, busy 1, storage errors 0 "
        r"\(drained, \d+ ms\)\n?",
        result.out,
    ), result.out
