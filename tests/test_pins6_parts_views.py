"""Pins for the upload API's views, sixth round (issue #31): an unknown path is a JSON 404
for every method, and the token is checked before the method."""

import pytest

from tests.api_helpers import BASE, Api, error_code, make_token


@pytest.fixture
def api(client, user, portal_storage):
    return Api(client, make_token(user))


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_an_unknown_path_is_a_404_whatever_the_method(api, method):
    """No method gets a 405 at a path where there is no endpoint: the answer says there
    is none (a client with a wrong URL learns that, not that it used the wrong verb)."""
    response = api.client.generic(method, "/api/v1/uploads/nothing-here", headers=api.headers)
    assert response.status_code == 404
    assert "Allow" not in response
    if method != "HEAD":
        assert response.json()["error"]["code"] == "no_such_endpoint"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", BASE), ("PUT", f"{BASE}/00000000-0000-0000-0000-000000000000")],
)
def test_a_wrong_method_without_a_token_is_401_not_405(client, user, method, path):
    """Without a token nothing about the endpoint is told, not even its methods: 401 with
    the bearer challenge comes before the 405."""
    response = client.generic(method, path)
    assert (response.status_code, error_code(response)) == (401, "missing_token")
    assert "Allow" not in response
    assert response["WWW-Authenticate"] == 'Bearer realm="portal"'


def test_a_wrong_method_with_a_token_is_405(api):
    """With a valid token the same request is the 405 naming the allowed methods (the 401
    above is about the token, not a rule that hides every 405)."""
    response = api.client.get(BASE, headers=api.headers)
    assert (response.status_code, response["Allow"]) == (405, "POST")
