"""``portal_upload``'s token file: any mode that lets another user read it is warned about
(``portal.management.token_source``). In-process, against a port nothing listens on: the
warning comes before the first request."""

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import free_port


@pytest.mark.parametrize(
    ("mode", "warned"), [(0o600, False), (0o640, True), (0o604, True), (0o400, False)]
)
def test_a_token_file_others_may_read_is_warned_about(tmp_path, capsys, mode, warned):
    upload = tmp_path / "data.bin"
    upload.write_bytes(b"x" * 10)
    token = tmp_path / "token"
    token.write_text("pt_some-token\n")
    token.chmod(mode)

    with pytest.raises(CommandError):
        call_command(
            "portal_upload",
            str(upload),
            "--url",
            f"http://127.0.0.1:{free_port()}",
            "--token-file",
            str(token),
            "--retries",
            "0",
        )

    warning = f"can be read by other users (mode {mode:o})"
    assert (warning in capsys.readouterr().err) is warned
