"""The modes the operator sets for uploaded files and directories
(``FILE_UPLOAD_PERMISSIONS``, ``FILE_UPLOAD_DIRECTORY_PERMISSIONS``) hold for what the
in-place path makes too: the session's assembly file and the directories above it, exactly,
whatever the process's umask (``local_in_place``, ``local_walk``)."""

import os
import stat

import pytest

from tests.api_helpers import Api, make_token
from tests.conftest import apply_storage
from tests.storage_helpers import CHUNK, assembly_path


@pytest.fixture
def umask_022():
    """A umask that takes bits the settings below give: only a chmod gets them back."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def api(client, user, settings, data_dir, umask_022):
    settings.FILE_UPLOAD_PERMISSIONS = 0o660
    settings.FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o770
    apply_storage(settings, "local", data_dir)
    return Api(client, make_token(user))


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_assembly_file_and_its_directory_get_the_configured_modes(api):
    data = os.urandom(2 * CHUNK)
    session = api.start(data, CHUNK)["id"]

    assert api.put(session, 1, data[:CHUNK]).status_code == 201

    path = assembly_path(session)
    assert oct(mode(path)) == oct(0o660)
    assert oct(mode(os.path.dirname(path))) == oct(0o770)
