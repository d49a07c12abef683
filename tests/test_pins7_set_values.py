"""Settings values (``boot.config``): shapes the earlier pins step over, an origin without
a port, a database port of 0, a long scheme, an empty variable read by gunicorn's master."""

import subprocess

import pytest

from boot import config as v
from tests.basics import PYTHON, ROOT


@pytest.fixture
def problems():
    v.PROBLEMS.clear()
    yield v.PROBLEMS
    v.PROBLEMS.clear()


def test_a_settings_error_carries_every_problem_in_its_message():
    """The exception's own message (what a plain ``except ImproperlyConfigured`` logs)
    holds every problem, one a line, not only the first."""
    error = v.SettingsError(["A='1': must be a number", "B: required"])
    assert error.args == ("A='1': must be a number\nB: required",)
    assert str(error) == "  - A='1': must be a number\n  - B: required"


def test_a_ceiling_of_zero_still_bounds():
    """A bound of 0 is a bound, not "no bound": 0 is taken, 1 refused."""
    value = v.IntValue(0, min_value=-5, max_value=0)
    assert value.to_python("0") == 0
    with pytest.raises(v.Invalid, match=r"^must be at most 0$"):
        value.to_python("1")


def test_origins_without_a_port_are_taken_and_lowercased():
    """Browsers send ``Origin`` in lower case and without a default port: an operator's
    ``HTTPS://App.Example.COM`` must match what they send."""
    value = v.OriginListValue([])
    assert value.to_python("HTTPS://App.Example.COM, http://[::1],http://localhost:8080") == [
        "https://app.example.com",
        "http://[::1]",
        "http://localhost:8080",
    ]


def test_a_database_port_of_one_is_a_port(problems):
    """The lowest port is kept as given (the range check starts above 0, not above 1)."""
    assert v.database_from_url("postgres://portal@db.internal:1/portal")["PORT"] == 1
    assert problems == []


def test_a_long_scheme_is_cut_to_twenty_characters(problems):
    """The scheme is quoted to name the mistake, but no more than 20 characters of a value
    that may be a whole connection string pasted without its ``://``."""
    assert v.database_from_url("postgresqlpassword-hunter2secret://x") is None
    [problem] = problems
    assert problem.startswith("DATABASE_URL (scheme 'postgresqlpassword-h'): ")
    assert "hunter2" not in problem


def test_gunicorns_master_reads_an_empty_variable_as_the_settings_do(monkeypatch, problems):
    """``PORTAL_BEHIND_PROXY=`` is "false" for the workers' settings; the master, which
    reads it without them, must not fall back to a true default and disagree."""
    switch = v.BoolValue(True)
    assert v.from_environ(switch, "PORTAL_BEHIND_PROXY", {"PORTAL_BEHIND_PROXY": ""}) is False
    assert v.from_environ(switch, "PORTAL_BEHIND_PROXY", {}) is True
    monkeypatch.setenv("PORTAL_BEHIND_PROXY", "")
    assert v.BoolValue(True).setup("PORTAL_BEHIND_PROXY") is False
    assert problems == []


def test_manage_py_refuses_a_configuration_that_is_not_one_of_the_three(tmp_path):
    """``DJANGO_CONFIGURATION=Base`` names a class, but not a configuration to run: it
    would start with no secret key; manage.py refuses it in one line, exit 2."""
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_CONFIGURATION": "Base",
        "PORTAL_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [PYTHON, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (
        2,
        "Configuration error:\n  - DJANGO_CONFIGURATION='Base': must be one of Dev, Test, Prod\n",
    )
