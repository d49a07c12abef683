"""Settings the settings tests share: ``manage.py check`` in a fresh process, a
production-like environment, and values every cross-field rule accepts."""

import subprocess

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
