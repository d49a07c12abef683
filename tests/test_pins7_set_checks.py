"""System checks (``portal.checks``) and gunicorn's preflight (``boot.preflight``): each
message and hint in full, the rules' other sides, and what is a deploy-only check."""

import subprocess

import pytest
from django.core.checks import Error, run_checks
from django.core.checks.registry import registry

from portal import checks as syschecks
from tests.basics import PYTHON, ROOT
from tests.settings_helpers import MIB, STRONG, ids

GENERATE = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


def test_settings_problems_list_only_portal_errors_and_no_empty_hint(clean):
    """A portal error without a hint is one line with no "()" tail; an error of another
    tag (not a portal setting) is not a reason to refuse to start."""

    def portal_error(app_configs=None, **kwargs):
        return [Error("no hint here", id="portal.E998")]

    def other_error(app_configs=None, **kwargs):
        return [Error("not ours", hint="elsewhere", id="other.E001")]

    registry.register(portal_error, syschecks.PORTAL_TAG)
    registry.register(other_error, "other")
    try:
        assert syschecks.settings_problems() == ["portal.E998: no hint here"]
    finally:
        registry.registered_checks.discard(portal_error)
        registry.registered_checks.discard(other_error)


def test_a_chunk_size_above_its_maximum_is_e001(clean):
    """E001 has two sides: above PORTAL_CHUNK_SIZE_MAX is as wrong as below the minimum."""
    clean.PORTAL_CHUNK_SIZE = 16 * MIB + 1
    [error] = syschecks.check_settings()
    assert (error.id, error.hint) == (
        "portal.E001",
        "Set PORTAL_CHUNK_SIZE_MIN <= PORTAL_CHUNK_SIZE <= PORTAL_CHUNK_SIZE_MAX.",
    )
    assert error.msg.startswith(f"PORTAL_CHUNK_SIZE ({16 * MIB + 1}) must lie between ")


def test_outbox_delays_are_quoted_without_a_trailing_zero(clean):
    """E003 quotes whole seconds as typed (``40``, not ``40.0``) and says why."""
    clean.PORTAL_OUTBOX_BASE_DELAY_SECONDS = 40.0
    [error] = syschecks.check_settings()
    assert (error.msg, error.hint) == (
        "PORTAL_OUTBOX_BASE_DELAY_SECONDS (40) must not exceed "
        "PORTAL_OUTBOX_MAX_DELAY_SECONDS (30).",
        "The retry delay grows from the base up to the max.",
    )


def test_s3_without_a_bucket_is_e006_alone_whatever_the_keys(clean):
    """E006 names the bucket variable and the endpoint one; a half key pair is not judged
    (E007) until there is a bucket to use it on."""
    clean.PORTAL_STORAGE = "s3"
    clean.AWS_STORAGE_BUCKET_NAME = ""
    clean.AWS_ACCESS_KEY_ID, clean.AWS_SECRET_ACCESS_KEY = "AKIDEXAMPLE", ""
    [error] = syschecks.check_settings()
    assert (error.id, error.msg, error.hint) == (
        "portal.E006",
        "PORTAL_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME.",
        "Set AWS_STORAGE_BUCKET_NAME (and AWS_S3_ENDPOINT_URL for a non-AWS service).",
    )


def test_a_reserve_above_the_floor_quotes_both_and_says_why(clean):
    """E013 quotes both byte counts and explains the consequence."""
    clean.PORTAL_FREE_SPACE_RESERVE_BYTES = 3 * MIB
    [error] = syschecks.check_settings()
    assert (error.id, error.msg, error.hint) == (
        "portal.E013",
        f"PORTAL_FREE_SPACE_RESERVE_BYTES ({3 * MIB}) must be less than "
        f"PORTAL_MIN_FREE_BYTES ({2 * MIB}).",
        "New uploads are admitted down to PORTAL_MIN_FREE_BYTES free; with a larger "
        "reserve every part of theirs would be refused.",
    )


def test_a_removed_setting_set_even_empty_is_named_with_the_reason(clean, monkeypatch):
    """E014 fires on the variable's presence (``VAR=`` in an env file too) and says what
    replaced it."""
    monkeypatch.setenv("PORTAL_LOCAL_IN_PLACE_ASSEMBLY", "")
    [error] = syschecks.check_settings()
    assert error.msg == (
        "PORTAL_LOCAL_IN_PLACE_ASSEMBLY is no longer a setting: parts on local disk always "
        "go into one file per session."
    )


@pytest.mark.parametrize(
    "word", ["change-me", "ChangeMe", "change_me", "Replace-Me", "PLACEHOLDER", "example"]
)
def test_each_placeholder_word_marks_a_secret_copied_from_an_example(word):
    """Every word of the example env files, in any case, inside an otherwise strong value."""
    assert syschecks.weak_secret(STRONG[:30] + word + STRONG[30:], 32) == "is a placeholder"


def test_each_weak_secret_says_how_to_generate_a_good_one(clean):
    """E010, E011 and E012 each give the command that makes a strong secret, and who else
    must get the same value (the runner, Prometheus)."""
    clean.SECRET_KEY = "django-insecure-" + STRONG
    clean.PORTAL_RUNNER_ENDPOINT = "http://runner.local/hook"
    clean.PORTAL_RUNNER_AUTH_SECRET = "example-" + STRONG
    clean.PORTAL_METRICS_TOKEN = STRONG[:16] + "\t" + STRONG[16:40]
    errors = syschecks.check_secrets()
    assert [(e.id, e.msg, e.hint) for e in errors] == [
        ("portal.E010", "SECRET_KEY is a placeholder.", f"Generate one: {GENERATE}"),
        (
            "portal.E011",
            "PORTAL_RUNNER_AUTH_SECRET is a placeholder.",
            f"Generate one ({GENERATE}) and give the runner the same value.",
        ),
        (
            "portal.E012",
            "PORTAL_METRICS_TOKEN contains whitespace, which a bearer token cannot carry.",
            f"Generate one ({GENERATE}) and give Prometheus the same value.",
        ),
    ]


def test_secrets_are_judged_by_check_deploy_only(clean):
    """A development key is fine for ``check`` (and the jobs' start); only ``--deploy``
    judges secrets."""
    clean.SECRET_KEY = "dev-insecure-key-do-not-use-in-production"
    assert "portal.E010" not in ids(run_checks(include_deployment_checks=False))
    assert "portal.E010" in ids(run_checks(include_deployment_checks=True))


def test_preflight_loads_prod_by_default_and_prints_each_problem_bare(tmp_path):
    """``python -m boot.preflight`` with no configuration named judges Prod (what gunicorn
    serves): its missing secrets are printed one a line, as recorded, exit 2."""
    result = subprocess.run(
        [PYTHON, "-m", "boot.preflight"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PORTAL_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert sorted(result.stdout.splitlines()) == [
        "ALLOWED_HOSTS: required in this configuration, but not set",
        "DATABASE_URL: required in this configuration, but not set",
        "SECRET_KEY: required in this configuration, but not set",
    ]
