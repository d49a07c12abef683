"""Settings values (``boot.config``): rules and shapes the other tests step over."""

import pytest

from boot import config as v


@pytest.fixture
def problems():
    v.PROBLEMS.clear()
    yield v.PROBLEMS
    v.PROBLEMS.clear()


def test_a_bad_value_of_sixty_characters_is_shown_whole_one_more_is_cut(monkeypatch, problems):
    """The operator sees the value as typed up to 60 characters; only a longer one ends in
    an ellipsis (so a 60-character value never looks truncated)."""
    monkeypatch.setenv("PORTAL_CHUNK_SIZE", "9" * 53 + "parsecs")  # 60 characters
    v.ByteSizeValue(8, min_value=1).setup("PORTAL_CHUNK_SIZE")
    monkeypatch.setenv("PORTAL_CHUNK_SIZE", "9" * 54 + "parsecs")  # 61
    v.ByteSizeValue(8, min_value=1).setup("PORTAL_CHUNK_SIZE")
    rule = "must be a size in bytes such as 8388608, 8MiB or 5GB"
    assert problems == [
        f"PORTAL_CHUNK_SIZE={'9' * 53 + 'parsecs'!r}: {rule}",
        f"PORTAL_CHUNK_SIZE={'9' * 54 + 'parsec' + '…'!r}: {rule}",
    ]


def test_a_relative_path_is_refused_an_absolute_or_empty_one_taken(monkeypatch, problems):
    """``PORTAL_DRAIN_FILE=drain`` would depend on the working directory of each process:
    refused by name, the default kept."""
    value = v.AbsolutePathValue("")
    monkeypatch.setenv("PORTAL_DRAIN_FILE", "run/drain")
    assert value.setup("PORTAL_DRAIN_FILE") == ""
    assert problems == ["PORTAL_DRAIN_FILE='run/drain': must be an absolute path (starting with /)"]
    assert value.to_python(" /srv/portal/drain ") == "/srv/portal/drain"
    assert value.to_python("") == ""


def test_a_list_is_comma_separated_items_trimmed_and_empties_dropped():
    """``ALLOWED_HOSTS=" a.example , ,b.example,"`` is two hosts, not four with blanks."""
    assert v.ListValue([]).to_python(" a.example , ,b.example,") == ["a.example", "b.example"]


def test_a_choice_is_read_in_any_case_and_spacing():
    """``PORTAL_LOG_FORMAT=" JSON "`` is the ``json`` choice."""
    assert v.ChoiceValue("console", choices=("json", "console")).to_python(" JSON ") == "json"


def test_a_database_url_keeps_connections_a_minute_and_checks_them_before_reuse(problems):
    """``dbgate.connect`` relies on Django's health check of a kept connection: without
    ``CONN_HEALTH_CHECKS`` a connection the server dropped would fail the request."""
    config = v.database_from_url("postgres://portal@db.internal:5432/portal")
    assert (config["CONN_MAX_AGE"], config["CONN_HEALTH_CHECKS"]) == (60, True)
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.internal", 5432, "portal")
    assert problems == []
