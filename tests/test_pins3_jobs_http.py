"""Pins for the jobs area, third round (issue #31): the edges of the URL rule the settings
and ``portal_upload --url`` share (``portal.httpclient.http_url_problem``)."""

import pytest

from portal.httpclient import http_url_problem

NOT_ASCII = "must be ASCII without spaces (percent-encode other characters)"


@pytest.mark.parametrize(
    "url, problem",
    [
        ("http://portal/~ops/!hook", ""),  # "!" (33) and "~" (126): the printable ends
        ("http://portal/\x7f", NOT_ASCII),  # DEL (127), just past them
        ("http://portal/\x1f", NOT_ASCII),  # a control character, just before
        ("http://portal:65535/", ""),
        ("https://portal:1/", ""),
    ],
)
def test_the_url_rule_accepts_exactly_printable_ascii_and_ports_1_to_65535(url, problem):
    """An operator's ``~user`` path or a ``!`` in a query is a valid URL; a byte outside
    printable ASCII is not (a request line cannot carry it)."""
    assert http_url_problem(url) == problem
