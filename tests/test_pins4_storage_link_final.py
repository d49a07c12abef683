"""``link_final`` on a retry: the final name already is the assembly file (an earlier
attempt linked it), so the check before linking is skipped; the check after it must still
refuse a file that meanwhile got a name the portal did not give it (a planted hard link)."""

import os

import pytest

from portal.storage import local_in_place, local_walk
from tests.conftest import apply_storage
from tests.fixtures import written_assembly

SESSION = "0f0e0d0c-0b0a-0908-0706-050403020100"
FINAL_KEY = "2026/01/01/final"


def test_a_retry_refuses_an_assembly_file_that_got_a_planted_name(settings, data_dir):
    """Bytes in a file somebody else holds a name of could change after their sha256 was
    recorded: the retry is refused and the final name it would keep is removed."""
    apply_storage(settings, "local", data_dir)
    with written_assembly(SESSION) as (key, temp, final, fd):
        local_in_place.link_final(temp, key, fd, final, FINAL_KEY)  # the earlier attempt
        os.link(temp.path(key), data_dir / "planted")

        with pytest.raises(local_walk.LinkRefused, match="3 names, expected 2"):
            local_in_place.link_final(temp, key, fd, final, FINAL_KEY)
    assert not os.path.lexists(final.path(FINAL_KEY))
    assert (data_dir / "planted").read_bytes() == b"p" * 100
