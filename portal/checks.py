"""Django system checks for settings that relate several values (``portal.E001``…).

Single-value rules are enforced while the settings load (``boot.config``); these run in
``manage.py check``, at the start of the portal's commands and of ``boot.wsgi``.
"""

import os

from django.conf import settings
from django.core.checks import Error, Tags, register, run_checks

PORTAL_TAG = "portal"
# Settings that are gone: still set, they would look as if they did something.
REMOVED_SETTINGS = {
    "PORTAL_LOCAL_IN_PLACE_ASSEMBLY": "parts on local disk always go into one file per session",
}
# Words of the example env file and of the usual tutorials: a secret that holds one was
# copied, not generated.
PLACEHOLDER_WORDS = ("change-me", "changeme", "change_me", "replace-me", "placeholder", "example")
MIN_SECRET_KEY_CHARS = 50
MIN_RUNNER_SECRET_CHARS = 32
MIN_METRICS_TOKEN_CHARS = 32
GENERATE = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


def settings_problems():
    """One line per ``portal`` check error: what ``boot.wsgi`` and every job refuse to run on."""
    return [
        f"{problem.id}: {problem.msg}" + (f" ({problem.hint})" if problem.hint else "")
        for problem in run_checks(tags=[PORTAL_TAG])
        if problem.is_serious()
    ]


def _error(code, msg, hint):
    return Error(msg, hint=hint, id=f"portal.{code}")


@register(PORTAL_TAG, Tags.compatibility)
def check_settings(app_configs=None, **kwargs):
    s = settings
    low, default, high = s.PORTAL_CHUNK_SIZE_MIN, s.PORTAL_CHUNK_SIZE, s.PORTAL_CHUNK_SIZE_MAX
    base, cap = s.PORTAL_OUTBOX_BASE_DELAY_SECONDS, s.PORTAL_OUTBOX_MAX_DELAY_SECONDS
    reserve, minimum = s.PORTAL_FREE_SPACE_RESERVE_BYTES, s.PORTAL_MIN_FREE_BYTES
    s3 = s.PORTAL_STORAGE == "s3"
    rules = [
        (
            not low <= default <= high,
            "E001",
            f"PORTAL_CHUNK_SIZE ({default}) must lie between PORTAL_CHUNK_SIZE_MIN ({low}) "
            f"and PORTAL_CHUNK_SIZE_MAX ({high}).",
            "Set PORTAL_CHUNK_SIZE_MIN <= PORTAL_CHUNK_SIZE <= PORTAL_CHUNK_SIZE_MAX.",
        ),
        (
            high > s.PORTAL_MAX_FILE_SIZE,
            "E002",
            f"PORTAL_CHUNK_SIZE_MAX ({high}) must not exceed PORTAL_MAX_FILE_SIZE "
            f"({s.PORTAL_MAX_FILE_SIZE}).",
            "Lower PORTAL_CHUNK_SIZE_MAX or raise PORTAL_MAX_FILE_SIZE.",
        ),
        (
            base > cap,
            "E003",
            f"PORTAL_OUTBOX_BASE_DELAY_SECONDS ({base:g}) must not exceed "
            f"PORTAL_OUTBOX_MAX_DELAY_SECONDS ({cap:g}).",
            "The retry delay grows from the base up to the max.",
        ),
        (
            s.PORTAL_RUNNER_ENDPOINT and not s.PORTAL_RUNNER_AUTH_SECRET,
            "E005",
            "PORTAL_RUNNER_AUTH_SECRET is not set, but PORTAL_RUNNER_ENDPOINT is.",
            "The runner verifies the X-Portal-Signature HMAC with this shared secret.",
        ),
        (
            s3 and not s.AWS_STORAGE_BUCKET_NAME,
            "E006",
            "PORTAL_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME.",
            "Set AWS_STORAGE_BUCKET_NAME (and AWS_S3_ENDPOINT_URL for a non-AWS service).",
        ),
        (
            # boto3 would fail on the first request with PartialCredentialsError.
            s3
            and s.AWS_STORAGE_BUCKET_NAME
            and bool(s.AWS_ACCESS_KEY_ID) != bool(s.AWS_SECRET_ACCESS_KEY),
            "E007",
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together.",
            "Set both, or neither to use boto3's default chain (instance role, profile).",
        ),
        (
            minimum and reserve >= minimum,
            "E013",
            f"PORTAL_FREE_SPACE_RESERVE_BYTES ({reserve}) must be less than "
            f"PORTAL_MIN_FREE_BYTES ({minimum}).",
            "New uploads are admitted down to PORTAL_MIN_FREE_BYTES free; with a larger "
            "reserve every part of theirs would be refused.",
        ),
    ]
    rules += [
        (
            True,
            "E014",
            f"{name} is no longer a setting: {why}.",
            f"Remove {name} from the environment.",
        )
        for name, why in REMOVED_SETTINGS.items()
        if name in os.environ
    ]
    return [_error(code, msg, hint) for broken, code, msg, hint in rules if broken]


def weak_secret(value, min_chars):
    """Why ``value`` is no secret ("" when it is fine): a placeholder, too short, too plain."""
    lowered = value.lower()
    if any(word in lowered for word in PLACEHOLDER_WORDS) or "insecure" in lowered:
        return "is a placeholder"
    if len(value) < min_chars:
        return f"has {len(value)} characters, fewer than {min_chars}"
    if len(set(value)) < 8:
        return "has fewer than 8 different characters"
    return ""


@register(Tags.security, deploy=True)
def check_secrets(app_configs=None, **kwargs):
    """``check --deploy``: refuse secrets copied from the example or too weak to sign with."""
    errors = []
    if reason := weak_secret(settings.SECRET_KEY, MIN_SECRET_KEY_CHARS):
        errors.append(_error("E010", f"SECRET_KEY {reason}.", f"Generate one: {GENERATE}"))
    runner_secret = settings.PORTAL_RUNNER_AUTH_SECRET
    if settings.PORTAL_RUNNER_ENDPOINT and (
        reason := runner_secret and weak_secret(runner_secret, MIN_RUNNER_SECRET_CHARS)
    ):
        hint = f"Generate one ({GENERATE}) and give the runner the same value."
        errors.append(_error("E011", f"PORTAL_RUNNER_AUTH_SECRET {reason}.", hint))
    if token := settings.PORTAL_METRICS_TOKEN:
        reason = weak_secret(token, MIN_METRICS_TOKEN_CHARS)
        if not reason and any(char.isspace() for char in token):
            reason = "contains whitespace, which a bearer token cannot carry"
        if reason:
            hint = f"Generate one ({GENERATE}) and give Prometheus the same value."
            errors.append(_error("E012", f"PORTAL_METRICS_TOKEN {reason}.", hint))
    return errors
