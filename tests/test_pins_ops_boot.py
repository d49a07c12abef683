"""Pins for the ops area (issue #31), in-process: the system checks (``portal.checks``),
the settings values (``boot.config``), gunicorn's preflight and the settings' directories."""

import pytest
from django.core.checks import Warning as CheckWarning
from django.core.checks.registry import registry

from boot import config as v
from portal import checks as syschecks
from tests import fixtures
from tests.settings_helpers import MIB, STRONG, ids

clean = fixtures.clean  # a fixture of every module; named here for older imports


# --- portal.checks: the cross-field rules at their edges -----------------------------------


def test_chunk_sizes_equal_to_their_bounds_pass_one_byte_past_fails(clean):
    clean.PORTAL_CHUNK_SIZE_MAX = clean.PORTAL_MAX_FILE_SIZE  # equal: allowed
    assert syschecks.check_settings() == []
    clean.PORTAL_CHUNK_SIZE = 8 * MIB - 1
    [error] = syschecks.check_settings()
    assert error.id == "portal.E001"
    assert error.msg == (
        f"PORTAL_CHUNK_SIZE ({8 * MIB - 1}) must lie between PORTAL_CHUNK_SIZE_MIN ({8 * MIB}) "
        f"and PORTAL_CHUNK_SIZE_MAX ({16 * MIB})."
    )
    clean.PORTAL_CHUNK_SIZE = 8 * MIB
    clean.PORTAL_CHUNK_SIZE_MAX = 16 * MIB + 1
    assert ids(syschecks.check_settings()) == ["portal.E002"]


def test_outbox_delays_equal_pass_a_larger_base_fails(clean):
    clean.PORTAL_OUTBOX_BASE_DELAY_SECONDS = 30.5
    [error] = syschecks.check_settings()
    assert (error.id, error.msg) == (
        "portal.E003",
        "PORTAL_OUTBOX_BASE_DELAY_SECONDS (30.5) must not exceed "
        "PORTAL_OUTBOX_MAX_DELAY_SECONDS (30).",
    )


def test_a_reserve_must_stay_below_the_minimum_free(clean):
    clean.PORTAL_FREE_SPACE_RESERVE_BYTES = 2 * MIB
    assert ids(syschecks.check_settings()) == ["portal.E013"]
    clean.PORTAL_MIN_FREE_BYTES = 0  # the floor off: any reserve
    assert syschecks.check_settings() == []


def test_runner_endpoint_needs_its_secret(clean):
    clean.PORTAL_RUNNER_ENDPOINT = "http://runner.local/hook"
    clean.PORTAL_RUNNER_AUTH_SECRET = ""
    assert ids(syschecks.check_settings()) == ["portal.E005"]
    clean.PORTAL_RUNNER_AUTH_SECRET = STRONG
    assert syschecks.check_settings() == []


@pytest.mark.parametrize(
    ("bucket", "key_id", "secret", "expected"),
    [
        ("", "", "", ["portal.E006"]),
        ("portal", "", "", []),
        ("portal", "AKIDEXAMPLE", "s3cr3t", []),
        ("portal", "AKIDEXAMPLE", "", ["portal.E007"]),
        ("portal", "", "s3cr3t", ["portal.E007"]),
    ],
)
def test_s3_needs_a_bucket_and_both_keys_or_neither(clean, bucket, key_id, secret, expected):
    clean.PORTAL_STORAGE = "s3"
    clean.AWS_STORAGE_BUCKET_NAME = bucket
    clean.AWS_ACCESS_KEY_ID, clean.AWS_SECRET_ACCESS_KEY = key_id, secret
    assert ids(syschecks.check_settings()) == expected


def test_a_removed_setting_in_the_environment_is_named(clean, monkeypatch):
    monkeypatch.setenv("PORTAL_LOCAL_IN_PLACE_ASSEMBLY", "false")
    [error] = syschecks.check_settings()
    assert error.id == "portal.E014"
    assert error.msg.startswith("PORTAL_LOCAL_IN_PLACE_ASSEMBLY is no longer a setting: ")
    assert error.hint == "Remove PORTAL_LOCAL_IN_PLACE_ASSEMBLY from the environment."


def test_settings_problems_list_errors_with_hints_never_warnings(clean):
    def a_warning(app_configs=None, **kwargs):
        return [CheckWarning("only a warning", id="portal.W999")]

    registry.register(a_warning, syschecks.PORTAL_TAG)
    try:
        assert syschecks.settings_problems() == []
        clean.PORTAL_RUNNER_ENDPOINT = "http://runner.local/hook"
        clean.PORTAL_RUNNER_AUTH_SECRET = ""
        assert syschecks.settings_problems() == [
            "portal.E005: PORTAL_RUNNER_AUTH_SECRET is not set, but PORTAL_RUNNER_ENDPOINT is. "
            "(The runner verifies the X-Portal-Signature HMAC with this shared secret.)"
        ]
    finally:
        registry.registered_checks.discard(a_warning)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("a" * 7 + "bcdefgh" + "x" * 18, ""),  # 32 chars, 8 different: fine
        ("abcdefgh" * 4, ""),
        ("abcdefg" * 5, "has fewer than 8 different characters"),
        ("abcdefgh" * 4 + "i"[:0], ""),
        ("abcdefghij" * 3 + "k", "has 31 characters, fewer than 32"),
        ("x" * 20 + "CHANGE-ME" + "abcdefgh", "is a placeholder"),
        ("abcdefgh" * 4 + "-insecure", "is a placeholder"),
    ],
)
def test_weak_secret_at_its_limits(value, reason):
    assert syschecks.weak_secret(value, 32) == reason


def test_check_deploy_judges_each_secret(clean):
    assert syschecks.check_secrets() == []
    clean.SECRET_KEY = STRONG[:49]
    [error] = syschecks.check_secrets()
    assert (error.id, error.msg) == ("portal.E010", "SECRET_KEY has 49 characters, fewer than 50.")
    clean.SECRET_KEY = STRONG
    clean.PORTAL_RUNNER_AUTH_SECRET = "short-secret"
    assert syschecks.check_secrets() == []  # no endpoint: the secret is unused
    clean.PORTAL_RUNNER_ENDPOINT = "http://runner.local/hook"
    [error] = syschecks.check_secrets()
    assert (error.id, error.msg) == (
        "portal.E011",
        "PORTAL_RUNNER_AUTH_SECRET has 12 characters, fewer than 32.",
    )
    clean.PORTAL_RUNNER_ENDPOINT = ""
    clean.PORTAL_METRICS_TOKEN = STRONG[:20] + " " + STRONG[20:40]
    [error] = syschecks.check_secrets()
    assert (error.id, error.msg) == (
        "portal.E012",
        "PORTAL_METRICS_TOKEN contains whitespace, which a bearer token cannot carry.",
    )
    assert STRONG[:20] not in error.hint


# --- boot.config: the values, each rule at its edge -----------------------------------------


@pytest.fixture
def problems():
    v.PROBLEMS.clear()
    yield v.PROBLEMS
    v.PROBLEMS.clear()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("8388608", 8388608),
        ("1k", 1000),
        ("1KB", 1000),
        ("1KiB", 1024),
        ("8MiB", 8 * MIB),
        ("8 mb", 8_000_000),
        ("2GiB", 2 * 1024**3),
        ("1TiB", 1024**4),
        ("3b", 3),
    ],
)
def test_byte_sizes_read_decimal_and_binary_units(raw, expected):
    assert v.ByteSizeValue(1, min_value=1).to_python(raw) == expected


@pytest.mark.parametrize("raw", ["1.5MB", "-1", "8 parsecs", "MiB", "\uff11\uff12"])
def test_byte_sizes_refuse_what_is_no_size(raw):
    with pytest.raises(v.Invalid, match="must be a size in bytes"):
        v.ByteSizeValue(1, min_value=1).to_python(raw)


def test_numbers_take_their_bounds_and_refuse_one_past():
    value = v.IntValue(5, min_value=1, max_value=10)
    assert (value.to_python("1"), value.to_python(" 10 ")) == (1, 10)
    with pytest.raises(v.Invalid, match=r"^must be at least 1$"):
        value.to_python("0")
    with pytest.raises(v.Invalid, match=r"^must be at most 10$"):
        value.to_python("11")
    seconds = v.FloatValue(1.0, min_value=0, max_value=60)
    assert (seconds.to_python("0"), seconds.to_python("60")) == (0.0, 60.0)
    with pytest.raises(v.Invalid, match=r"^must be at least 0.001$"):
        v.FloatValue(1.0).to_python("0")


@pytest.mark.parametrize("raw", ["\uff11\uff12", "٣", "1e3", "", "twelve"])
def test_whole_numbers_are_ascii_digits(raw):
    with pytest.raises(v.Invalid, match=r"^must be a whole number$"):
        v.IntValue(5, min_value=1).to_python(raw)


def test_floats_refuse_non_ascii_and_non_finite():
    value = v.FloatValue(1.0, max_value=1e9)
    with pytest.raises(v.Invalid, match=r"^must be a number$"):
        value.to_python("\uff11.\uff15")
    for raw in ("nan", "inf", "-inf"):
        with pytest.raises(v.Invalid, match=r"^must be a finite number$"):
            value.to_python(raw)


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        ("https://a.example:65535", True),
        ("http://[::1]:1", True),
        ("https://a.example:65536", False),
        ("https://a.example:0", False),
        ("https://a.example/", False),
    ],
)
def test_origins_take_ports_1_to_65535(raw, ok):
    value = v.OriginListValue([])
    if ok:
        assert value.to_python(raw) == [raw]
    else:
        with pytest.raises(v.Invalid, match="is not an origin"):
            value.to_python(raw)


def test_a_bad_url_is_named_with_its_password_hidden(monkeypatch, problems):
    monkeypatch.setenv("PORTAL_RUNNER_ENDPOINT", "ftp://runner:hunter2secret@host/hook")
    assert v.HttpUrlValue("").setup("PORTAL_RUNNER_ENDPOINT") == ""
    [problem] = problems
    assert problem.startswith("PORTAL_RUNNER_ENDPOINT='ftp://runner:***@host/hook': ")
    assert "hunter2secret" not in problem


def test_a_long_bad_value_is_shortened_and_each_problem_kept(monkeypatch, problems):
    monkeypatch.setenv("PORTAL_CHUNK_SIZE", "9" * 70 + "parsecs")
    monkeypatch.setenv("PORTAL_CLEANUP_BATCH_SIZE", "0")
    assert v.ByteSizeValue(8, min_value=1).setup("PORTAL_CHUNK_SIZE") == 8
    assert v.IntValue(100, min_value=1).setup("PORTAL_CLEANUP_BATCH_SIZE") == 100
    assert problems == [
        f"PORTAL_CHUNK_SIZE={'9' * 60 + '…'!r}: must be a size in bytes such as 8388608, "
        "8MiB or 5GB",
        "PORTAL_CLEANUP_BATCH_SIZE='0': must be at least 1",
    ]
    with pytest.raises(v.SettingsError) as raised:
        v.raise_problems()
    assert str(raised.value).splitlines() == [f"  - {p}" for p in raised.value.problems]
    assert problems == []


def test_a_required_value_left_empty_is_a_problem(monkeypatch, problems):
    monkeypatch.setenv("SECRET_KEY", "   ")
    assert v.NamedValue("", required=True).setup("SECRET_KEY") == ""
    assert problems == ["SECRET_KEY: required in this configuration, but not set"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("yes", True), ("On", True), ("0", False), ("", False), ("n", False)],
)
def test_booleans(raw, expected):
    assert v.BoolValue(False).to_python(raw) is expected


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("postgres://u:p@db:65535/portal", True),
        ("postgres://u:p@db/portal", True),
        ("postgres://u:p@db:65536/portal", False),
        ("postgres://u:p@db:0/portal", False),
        ("postgres://u:p@db:000", False),
        ("postgres://u:p@db:10/portal?options=-c%20x:0/", True),
        ("postgres://u:0@db/portal", True),
        ("mysql://u:p@db/portal", False),
    ],
)
def test_database_urls_name_the_scheme_never_the_url(url, ok, problems):
    config = v.database_from_url(url)
    if ok:
        assert config["ENGINE"] == "django.db.backends.postgresql"
        assert problems == []
    else:
        assert config is None
        [problem] = problems
        assert problem.startswith(f"DATABASE_URL (scheme {url.split(':')[0]!r}): ")
        assert "u:p" not in problem


# --- boot.preflight: gunicorn's check before any worker, in this process --------------------


def test_preflight_prints_each_problem_and_exits_2(clean, capsys):
    from boot import preflight
    from portal import exitcodes

    assert preflight.main() == exitcodes.OK
    assert capsys.readouterr().out == ""
    clean.PORTAL_CHUNK_SIZE = 1
    clean.PORTAL_RUNNER_ENDPOINT = "http://runner.local/hook"
    clean.PORTAL_RUNNER_AUTH_SECRET = ""
    assert preflight.main() == exitcodes.USAGE == 2
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["portal.E001", "portal.E005"]


def test_a_directory_that_cannot_be_made_names_its_variable(tmp_path, monkeypatch, problems):
    from boot import settings as boot_settings

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("PORTAL_DATA_DIR", str(blocker))
    boot_settings._make_dir(blocker / "temp", "PORTAL_DATA_DIR")
    boot_settings._make_database_dir(":memory:", None)
    assert problems == [
        f"PORTAL_DATA_DIR={str(blocker)!r}: cannot create the directory "
        f"{str(blocker / 'temp')!r} (Not a directory)"
    ]
