"""System checks (``portal.checks``): rules that must stay quiet where they do not apply."""

from portal import checks as syschecks
from tests.test_pins_ops_boot import STRONG, clean, ids  # noqa: F401  (fixture)


def test_s3_keys_are_not_judged_while_the_storage_is_local(clean):  # noqa: F811
    """A half-set key pair left in the environment of a local-disk install is unused: only
    ``PORTAL_STORAGE=s3`` makes it an error (E007), as it makes a missing bucket one (E006)."""
    clean.PORTAL_STORAGE = "local"
    clean.AWS_STORAGE_BUCKET_NAME = "portal"
    clean.AWS_ACCESS_KEY_ID, clean.AWS_SECRET_ACCESS_KEY = "AKIDEXAMPLE", ""
    assert syschecks.check_settings() == []
    clean.PORTAL_STORAGE = "s3"
    assert ids(syschecks.check_settings()) == ["portal.E007"]


def test_a_missing_runner_secret_is_e005_not_also_a_weak_secret(clean):  # noqa: F811
    """No secret at all is ``check``'s E005; ``check --deploy`` does not add an E011 saying
    the empty secret "has 0 characters"."""
    clean.PORTAL_RUNNER_ENDPOINT = "http://runner.local/hook"
    clean.PORTAL_RUNNER_AUTH_SECRET = ""
    assert syschecks.check_secrets() == []
    assert ids(syschecks.check_settings()) == ["portal.E005"]


def test_a_metrics_token_keeps_its_first_problem_when_it_also_has_a_space(clean):  # noqa: F811
    """A short (or placeholder) token with a space is refused for being short (placeholder):
    the whitespace rule speaks only for a token that is otherwise fine."""
    clean.PORTAL_METRICS_TOKEN = "Zq8-xW3_ rT6yU1"
    [short] = syschecks.check_secrets()
    clean.PORTAL_METRICS_TOKEN = "change-me " + STRONG
    [placeholder] = syschecks.check_secrets()
    assert (short.id, short.msg) == (
        "portal.E012",
        "PORTAL_METRICS_TOKEN has 15 characters, fewer than 32.",
    )
    assert (placeholder.id, placeholder.msg) == (
        "portal.E012",
        "PORTAL_METRICS_TOKEN is a placeholder.",
    )
