"""Pins for the upload API's request metrics (issue #31, the upload area, third round):
``portal_http_requests_total`` counts requests by URL pattern name (docs/operations.md),
so each endpoint's name is part of what dashboards query."""

import pytest
from prometheus_client import REGISTRY

from tests.api_helpers import Api, make_token


@pytest.fixture
def api(client, user, portal_storage):
    return Api(client, make_token(user))


def requests_count(**labels):
    return REGISTRY.get_sample_value("portal_http_requests_total", labels) or 0


def test_a_sessions_status_and_its_parts_are_counted_under_their_pattern_names(api):
    session = api.start(b"x" * 15, 10)["id"]
    before = {
        view: requests_count(view=view, method=method, status="2xx")
        for view, method in (("upload-session", "GET"), ("upload-part", "PUT"))
    }

    assert api.status(session).status_code == 200
    assert api.put(session, 2, b"x" * 5).status_code == 201

    assert requests_count(view="upload-session", method="GET", status="2xx") == (
        before["upload-session"] + 1
    )
    assert requests_count(view="upload-part", method="PUT", status="2xx") == (
        before["upload-part"] + 1
    )
