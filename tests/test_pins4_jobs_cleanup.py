"""Pins for the jobs area, fourth round (issue #31): ``portal_cleanup``'s progress line
when a batch's deletions fail."""

import os
import re

import pytest

from portal import storage
from portal.models import UploadSession
from tests.commands import run_command
from tests.conftest import apply_storage
from tests.seed import make_session, temp_keys_of

pytestmark = pytest.mark.django_db


def test_the_progress_line_shows_a_batchs_failed_deletions(settings, data_dir, user):
    """At ``-v 2`` each batch's line ends with ``failed=N`` when deletions failed, so an
    operator watching a long run sees the store failing before the summary."""
    apply_storage(settings, "local", data_dir)
    session = make_session(user, status=UploadSession.Status.ABORTED, total_parts=3)
    path = storage.temp_storage().path(temp_keys_of(session)[0])
    os.unlink(path)
    os.mkdir(path)  # unlink() of a directory fails: a storage error

    shown = run_command("portal_cleanup", "--only", "orphans", verbosity=2)

    assert shown.code == 1
    assert re.search(
        r"^cleanup orphans: batch 1 .*objects_deleted=2 .*failed=1 \(\d+\.\d s\)$",
        shown.err,
        re.MULTILINE,
    ), shown.err
