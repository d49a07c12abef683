"""Every option of every portal command, given what a careless operator or a hostile
script would type: one line naming the option, exit 2, no traceback, nothing done.

Each command runs once per garbage value as a real ``manage.py`` process, forked from a
zygote that paid Django's imports once (``tests/reliability/zygote.py``); the database is
the test's own, so "nothing done" is checked in it.
"""

import pytest

from portal.models import ApiToken, JobRun

pytestmark = pytest.mark.reliability

HUGE = "9" * 40
# Hostile numbers: huge, negative, zero, NaN, infinity, empty, unicode digits, not a number.
NUMBERS = [HUGE, "-1", "0", "nan", "inf", "", "\u0969", "1e3", "12abc"]
SECONDS = [HUGE, "-1", "0", "nan", "inf", "-inf", "", "\u0969", "soon"]
URLS = ["ftp://portal", "http://portal:99999", "http://portal:port", "not a url", "", "http://"]

# (command, the arguments around the bad value, the option named in the error, values)
CASES = [
    ("portal_cleanup", ["--batch-size", "{}"], "--batch-size", NUMBERS),
    ("portal_cleanup", ["--max-seconds", "{}"], "--max-seconds", SECONDS),
    ("portal_cleanup", ["--only", "{}"], "--only", ["bogus", "", "stale;rm", "STALE"]),
    ("portal_dispatch", ["--limit", "{}"], "--limit", NUMBERS),
    ("portal_dispatch", ["--max-seconds", "{}"], "--max-seconds", SECONDS),
    (
        "portal_create_token",
        ["{}", "--create-user"],
        "username",
        ["", "<script>", "a/b", "two words", "x" * 151, "tab\there", "\u202eevil"],
    ),
    ("portal_create_token", ["alice", "--name", "{}"], "--name", ["n" * 101, "bell\x07"]),
    ("portal_upload", ["{path}", "--url", "{}", "--token", "pt_x"], "--url", URLS),
    (
        "portal_upload",
        ["{path}", "--url", "http://127.0.0.1:9", "--token", "pt_x", "--chunk-size", "{}"],
        "--chunk-size",
        NUMBERS,
    ),
    (
        "portal_upload",
        ["{path}", "--url", "http://127.0.0.1:9", "--token", "pt_x", "--parallel", "{}"],
        "--parallel",
        NUMBERS,
    ),
    (
        "portal_upload",
        ["{path}", "--url", "http://127.0.0.1:9", "--token", "pt_x", "--retries", "{}"],
        "--retries",
        [HUGE, "-1", "nan", "", "\u0969", "many"],
    ),
    (
        "portal_upload",
        ["{path}", "--url", "http://127.0.0.1:9", "--token", "pt_x", "--timeout", "{}"],
        "--timeout",
        SECONDS,
    ),
    (
        "portal_upload",
        ["{}", "--url", "http://127.0.0.1:9", "--token", "pt_x"],
        "not a readable, non-empty file",
        ["/nonexistent/file", "/dev/null", "/"],
    ),
]


@pytest.mark.parametrize(
    ("command", "template", "named", "values"), CASES, ids=[f"{c[0]} {c[2]}" for c in CASES]
)
def test_a_bad_option_is_one_line_exit_2_and_nothing_done(
    command, template, named, values, subprocess_env, user, zygote, tmp_path
):
    upload = tmp_path / "file.bin"
    upload.write_bytes(b"x" * 100)
    runner = zygote({**subprocess_env, "PORTAL_LOG_FORMAT": "console"})
    wrong = []
    for value in values:
        args = [part.format(value, path=upload) if "{" in part else part for part in template]
        outcome = runner.run(command, *args, timeout=60)
        output = outcome.stdout + outcome.stderr
        named_lines = [line for line in outcome.stderr.splitlines() if named in line]
        if outcome.exit != 2 or "Traceback" in output or not named_lines:
            wrong.append((value, outcome.exit, output[-500:]))
    assert wrong == []
    assert not JobRun.objects.exists()
    assert not ApiToken.objects.exists()
