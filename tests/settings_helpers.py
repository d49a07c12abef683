"""Settings the settings tests share: ``manage.py check`` in a fresh process, a
production-like environment, and values every cross-field rule accepts."""

import importlib.util
import os
import subprocess

from configurations.utils import uppercase_attributes

from boot import config as v
from boot.settings import BASE_DIR
from tests.basics import PYTHON, ROOT

MIB = 1024 * 1024
STRONG = "Zq8-xW3_rT6yU1iO0pA9sD2fG5hJ4kL7zX_cV-bN8mQ1wE3rT5y"  # 51 chars, many distinct

PROD_ENV = {
    "SECRET_KEY": "k" * 20 + "-prod-like-secret-key-with-enough-entropy-1234567890",
    "ALLOWED_HOSTS": "portal.example.com",
    "PORTAL_RUNNER_ENDPOINT": "https://runner.example.com/hooks/portal",
    "PORTAL_RUNNER_AUTH_SECRET": "rs-Qm7Vx2LpT9wK4cNb8HzJ1yEa6Ud3FgR5",
}


def run_check(env_overrides, *args, configuration="Dev", tmp_path=None):
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_CONFIGURATION": configuration,
        "PORTAL_DATA_DIR": str(tmp_path),
        **env_overrides,
    }
    return subprocess.run(
        [PYTHON, "manage.py", "check", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def ids(problems):
    return [problem.id for problem in problems]


SETTINGS_FILE = BASE_DIR / "boot" / "settings.py"
ENV_PREFIXES = ("PORTAL_", "AWS_", "DATABASE_", "SECURE_")
ENV_NAMES = ("SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS")
GIB = 1024 * MIB


def build(configuration, monkeypatch, tmp_path, **env):
    """The settings ``configuration`` gives under ``env`` alone (as the importer builds
    them), or the ``SettingsError`` it raises; ``PORTAL_DATA_DIR`` is ``tmp_path`` unless
    ``env`` names it (None: unset)."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES) or name in ENV_NAMES:
            monkeypatch.delenv(name)
    env.setdefault("PORTAL_DATA_DIR", str(tmp_path))
    for name, value in env.items():
        if value is not None:  # None: left unset
            monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("w7set_settings_copy", SETTINGS_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cls = getattr(module, configuration)
    try:
        cls.pre_setup()
        cls.setup()
        found = uppercase_attributes(cls())
        cls.post_setup()
    finally:
        v.PROBLEMS.clear()
    return found


PROD = {
    "SECRET_KEY": STRONG,
    "DATABASE_URL": "postgres://portal@db.internal:5432/portal",
    "ALLOWED_HOSTS": "portal.example.com, files.example.com",
}
