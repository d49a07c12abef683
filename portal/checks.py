"""Django system checks for settings that relate several values (``portal.E001``…).

Single-value rules (a number, a choice, a URL) are enforced while the settings load
(``boot.config``); these run in ``manage.py check``, at start-up of the portal's commands
and of the WSGI application (``boot.wsgi``). The readiness checks behind ``/ready`` are
django-health-check checks in ``portal.health.checks``.
"""

import os

from django.conf import settings
from django.core.checks import Error, Tags, register, run_checks

PORTAL_TAG = "portal"


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
def check_chunk_sizes(app_configs=None, **kwargs):
    low, default, high = (
        settings.PORTAL_CHUNK_SIZE_MIN,
        settings.PORTAL_CHUNK_SIZE,
        settings.PORTAL_CHUNK_SIZE_MAX,
    )
    errors = []
    if not low <= default <= high:
        errors.append(
            _error(
                "E001",
                f"PORTAL_CHUNK_SIZE ({default}) must lie between PORTAL_CHUNK_SIZE_MIN ({low}) "
                f"and PORTAL_CHUNK_SIZE_MAX ({high}).",
                "Set PORTAL_CHUNK_SIZE_MIN <= PORTAL_CHUNK_SIZE <= PORTAL_CHUNK_SIZE_MAX.",
            )
        )
    if high > settings.PORTAL_MAX_FILE_SIZE:
        errors.append(
            _error(
                "E002",
                f"PORTAL_CHUNK_SIZE_MAX ({high}) must not exceed PORTAL_MAX_FILE_SIZE "
                f"({settings.PORTAL_MAX_FILE_SIZE}).",
                "Lower PORTAL_CHUNK_SIZE_MAX or raise PORTAL_MAX_FILE_SIZE.",
            )
        )
    return errors


@register(PORTAL_TAG, Tags.compatibility)
def check_durations(app_configs=None, **kwargs):
    errors = []
    base, cap = settings.PORTAL_OUTBOX_BASE_DELAY_SECONDS, settings.PORTAL_OUTBOX_MAX_DELAY_SECONDS
    if base > cap:
        errors.append(
            _error(
                "E003",
                f"PORTAL_OUTBOX_BASE_DELAY_SECONDS ({base:g}) must not exceed "
                f"PORTAL_OUTBOX_MAX_DELAY_SECONDS ({cap:g}).",
                "The retry delay grows from the base up to the max.",
            )
        )
    return errors


@register(PORTAL_TAG, Tags.compatibility)
def check_runner(app_configs=None, **kwargs):
    if settings.PORTAL_RUNNER_ENDPOINT and not settings.PORTAL_RUNNER_AUTH_SECRET:
        return [
            _error(
                "E005",
                "PORTAL_RUNNER_AUTH_SECRET is not set, but PORTAL_RUNNER_ENDPOINT is.",
                "The runner verifies the X-Portal-Signature HMAC with this shared secret.",
            )
        ]
    return []


@register(PORTAL_TAG, Tags.compatibility)
def check_storage(app_configs=None, **kwargs):
    if settings.PORTAL_STORAGE == "s3" and not settings.AWS_STORAGE_BUCKET_NAME:
        return [
            _error(
                "E006",
                "PORTAL_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME.",
                "Set AWS_STORAGE_BUCKET_NAME (and AWS_S3_ENDPOINT_URL for a non-AWS service).",
            )
        ]
    if settings.PORTAL_STORAGE == "s3" and bool(settings.AWS_ACCESS_KEY_ID) != bool(
        settings.AWS_SECRET_ACCESS_KEY
    ):
        # boto3 would fail on the first request with PartialCredentialsError.
        return [
            _error(
                "E007",
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together.",
                "Set both, or neither to use boto3's default chain (instance role, profile).",
            )
        ]
    return []


# Settings that are gone: still set, they would look as if they did something.
REMOVED_SETTINGS = {
    "PORTAL_LOCAL_IN_PLACE_ASSEMBLY": "parts on local disk always go into one file per session",
}


@register(PORTAL_TAG, Tags.compatibility)
def check_removed_settings(app_configs=None, **kwargs):
    return [
        _error(
            "E014", f"{name} is no longer a setting: {why}.", f"Remove {name} from the environment."
        )
        for name, why in REMOVED_SETTINGS.items()
        if name in os.environ
    ]


# Words of the example env file and of the usual tutorials: a secret that holds one was
# copied, not generated.
PLACEHOLDER_WORDS = ("change-me", "changeme", "change_me", "replace-me", "placeholder", "example")
MIN_SECRET_KEY_CHARS = 50
MIN_RUNNER_SECRET_CHARS = 32
MIN_METRICS_TOKEN_CHARS = 32
GENERATE = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


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
    if settings.PORTAL_RUNNER_ENDPOINT and runner_secret:
        reason = weak_secret(runner_secret, MIN_RUNNER_SECRET_CHARS)
        if reason:
            errors.append(
                _error(
                    "E011",
                    f"PORTAL_RUNNER_AUTH_SECRET {reason}.",
                    f"Generate one ({GENERATE}) and give the runner the same value.",
                )
            )
    errors.extend(check_metrics_token())
    return errors


def check_metrics_token():
    """``PORTAL_METRICS_TOKEN`` opens /metrics without a session: no placeholder, no space."""
    token = settings.PORTAL_METRICS_TOKEN
    if not token:
        return []
    reason = weak_secret(token, MIN_METRICS_TOKEN_CHARS)
    if not reason and any(char.isspace() for char in token):
        reason = "contains whitespace, which a bearer token cannot carry"
    if not reason:
        return []
    hint = f"Generate one ({GENERATE}) and give Prometheus the same value."
    return [_error("E012", f"PORTAL_METRICS_TOKEN {reason}.", hint)]


@register(PORTAL_TAG, Tags.compatibility)
def check_free_space(app_configs=None, **kwargs):
    reserve, minimum = settings.PORTAL_FREE_SPACE_RESERVE_BYTES, settings.PORTAL_MIN_FREE_BYTES
    if minimum and reserve >= minimum:
        return [
            _error(
                "E013",
                f"PORTAL_FREE_SPACE_RESERVE_BYTES ({reserve}) must be less than "
                f"PORTAL_MIN_FREE_BYTES ({minimum}).",
                "New uploads are admitted down to PORTAL_MIN_FREE_BYTES free; with a larger "
                "reserve every part of theirs would be refused.",
            )
        ]
    return []
