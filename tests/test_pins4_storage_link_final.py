"""``link_final`` on a retry: the final name already is the assembly file (an earlier
attempt linked it), so the check before linking is skipped; the check after it must still
refuse a file that meanwhile got a name the portal did not give it (a planted hard link)."""

import io
import os

import pytest

from portal import storage
from portal.storage import local_in_place, local_walk
from tests.conftest import apply_storage

SESSION = "0f0e0d0c-0b0a-0908-0706-050403020100"
FINAL_KEY = "2026/01/01/final"


def test_a_retry_refuses_an_assembly_file_that_got_a_planted_name(settings, data_dir):
    """Bytes in a file somebody else holds a name of could change after their sha256 was
    recorded: the retry is refused and the final name it would keep is removed."""
    apply_storage(settings, "local", data_dir)
    with storage.backend().part_range(SESSION, 0, 100) as place:
        place.write(io.BytesIO(b"p" * 100), max_bytes=100)
    key = storage.assembly_key(SESSION)
    temp, final = storage.temp_storage(), storage.final_storage()
    fd = os.open(temp.path(key), os.O_RDONLY)
    try:
        local_in_place.link_final(temp, key, fd, final, FINAL_KEY)  # the earlier attempt
        os.link(temp.path(key), data_dir / "planted")

        with pytest.raises(local_walk.LinkRefused, match="3 names, expected 2"):
            local_in_place.link_final(temp, key, fd, final, FINAL_KEY)
    finally:
        os.close(fd)
    assert not os.path.lexists(final.path(FINAL_KEY))
    assert (data_dir / "planted").read_bytes() == b"p" * 100
