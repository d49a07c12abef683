"""A session's assembly file that another party removes between our ``O_EXCL`` create
(it existed) and our open (it is gone): opened again, a few times, then given up as an
outage (``local_in_place._open``): never a loop without end, never a 500; a
refused ``fchmod`` of a new file fails the request with its descriptor closed."""

import errno
import io
import os

import pytest

from portal import storage
from portal.storage import local_in_place, local_walk
from tests.storage_helpers import SESSION, open_fds_under


def racing_remover(monkeypatch, rounds):
    """For ``rounds`` rounds the file appears just before our create and is removed just
    before our open of the existing file, as a racing create-and-unlink would do; the
    number of opens tried."""
    real_open = local_walk.open_file
    opens = []

    def open_file(directory, leaf, flags, *args):
        opens.append(flags)
        if len(opens) <= 2 * rounds:
            if flags & os.O_EXCL:
                os.close(os.open(leaf, os.O_CREAT | os.O_WRONLY, dir_fd=directory.fd))
            else:
                os.unlink(leaf, dir_fd=directory.fd)
        return real_open(directory, leaf, flags, *args)

    monkeypatch.setattr(local_walk, "open_file", open_file)
    return opens


def test_a_file_removed_once_under_us_is_created_by_this_request(local, monkeypatch):
    opens = racing_remover(monkeypatch, rounds=1)
    with storage.backend().part_range(SESSION, 0, 10) as place:
        assert place.created is True
        stored = place.write(io.BytesIO(b"0123456789"), max_bytes=10)
    assert (stored.size, len(opens)) == (10, 3)


def test_a_file_that_keeps_vanishing_is_an_outage_after_a_few_tries(local, monkeypatch):
    opens = racing_remover(monkeypatch, rounds=local_in_place.OPEN_ATTEMPTS)
    with (
        pytest.raises(storage.StorageUnavailable) as failure,
        storage.backend().part_range(SESSION, 0, 10),
    ):
        pass
    assert failure.value.__cause__.errno == errno.ELOOP
    assert len(opens) == 2 * local_in_place.OPEN_ATTEMPTS


def test_a_volume_refusing_the_files_mode_is_an_outage_and_keeps_no_descriptor(
    local, monkeypatch, data_dir
):
    """Some mounts (CIFS, NFS with root squash) refuse ``chmod``: the request fails with
    that cause, and the descriptor it opened is closed, not written through afterwards."""

    def refuse(fd, mode):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "fchmod", refuse)
    with (
        pytest.raises(storage.StorageUnavailable) as failure,
        storage.backend().part_range(SESSION, 0, 10),
    ):
        pass
    assert isinstance(failure.value.__cause__, PermissionError)
    assert open_fds_under(data_dir) == 0
