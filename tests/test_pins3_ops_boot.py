"""Settings (``boot``): the documented default size limit, and an origin refused with a
message that quotes it and says what an origin looks like."""

import pytest

from boot import config as v
from tests.settings_helpers import run_check
from tests.tus_helpers import TUS


def test_out_of_the_box_a_file_may_be_ten_gib(client):
    """docs/configuration.md: ``PORTAL_MAX_FILE_SIZE`` defaults to ``10GiB`` (binary): tus
    clients read it from ``Tus-Max-Size`` to refuse a larger file before sending it."""
    response = client.options(TUS)
    assert response["Tus-Max-Size"] == str(10 * 1024**3)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("https://app.example.com/", "'https://app.example.com/'"),
        ("https://a.example:0", "'https://a.example:0'"),
    ],
)
def test_a_cors_value_that_is_no_origin_is_quoted_with_the_rule(raw, shown):
    with pytest.raises(v.Invalid) as refused:
        v.OriginListValue([]).to_python(raw)
    assert str(refused.value) == (
        f"{shown} is not an origin: use scheme://host[:port] "
        "(http or https, no path, no wildcard), comma-separated"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        *[(word, True) for word in ("1", "true", "TRUE", " yes ", "on", "y", "Y")],
        *[(word, False) for word in ("0", "false", "False", "no", " off ", "n", "", "  ")],
    ],
)
def test_every_documented_boolean_word_reads_as_itself(raw, expected):
    """Each word an operator may write for a switch (``PORTAL_BEHIND_PROXY=off``) is read
    the way it says, whatever the default; any other word is refused, not guessed."""
    assert v.BoolValue(not expected).to_python(raw) is expected


@pytest.mark.parametrize("raw", ["2", "enabled", "nope", "t"])
def test_a_word_that_is_no_boolean_is_refused(raw):
    with pytest.raises(v.Invalid, match=r"^must be true or false$"):
        v.BoolValue(False).to_python(raw)


def test_development_shows_debug_pages(tmp_path):
    """``Dev`` is for a person at a laptop: Django's debug pages are on (``check --deploy``
    says so), where ``Prod`` has them off."""
    result = run_check({}, "--deploy", tmp_path=tmp_path)
    assert "security.W018" in result.stderr, result.stderr


def test_outbox_retention_may_be_a_hundred_years_not_a_day_more(tmp_path):
    assert run_check({"PORTAL_OUTBOX_RETENTION_DAYS": "36500"}, tmp_path=tmp_path).returncode == 0
    refused = run_check({"PORTAL_OUTBOX_RETENTION_DAYS": "36501"}, tmp_path=tmp_path)
    assert refused.returncode == 2
    assert "PORTAL_OUTBOX_RETENTION_DAYS='36501': must be at most 36500" in refused.stderr
