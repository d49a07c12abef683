"""Pins for the upload API's tokens, sixth round (issue #31): the exact edges of a token's
length, a label's length, the stored prefix, and what a token of the wrong purpose says."""

import pytest
from django.test import Client

from portal.models import ApiToken
from portal.services import tokens
from portal.services.tokens import create_token, hash_token
from tests.api_helpers import Api, error_code

NO_SESSION = "00000000-0000-0000-0000-000000000000"


def test_a_token_of_exactly_the_most_characters_is_looked_up_one_more_is_refused(client, user):
    """A 200-character token is a token (a longer one is refused unread): the bound is
    inclusive, so a client holding such a token is let in, and a 201st character is not."""
    longest = "pt_" + "a" * 197
    longer = "pt_" + "b" * 198
    for raw in (longest, longer):
        user.api_tokens.create(key_prefix=raw[:10], key_hash=hash_token(raw))

    accepted = Api(client, longest).status(NO_SESSION)
    assert (accepted.status_code, error_code(accepted)) == (404, "session_not_found")
    refused = Api(client, longer).status(NO_SESSION)
    assert (refused.status_code, error_code(refused)) == (401, "invalid_token")
    assert refused["WWW-Authenticate"] == 'Bearer realm="portal", error="invalid_token"'


def test_a_missing_token_names_the_scheme_without_an_error(client, user):
    """RFC 6750: a request with no token gets the bare challenge, a bad token also says
    ``invalid_token`` (clients tell "log in" from "your token is wrong" by it)."""
    missing = client.get(f"/api/v1/uploads/sessions/{NO_SESSION}")
    assert (missing.status_code, error_code(missing)) == (401, "missing_token")
    assert missing["WWW-Authenticate"] == 'Bearer realm="portal"'
    bad = Api(client, "pt_not-a-token").status(NO_SESSION)
    assert bad["WWW-Authenticate"] == 'Bearer realm="portal", error="invalid_token"'


def test_a_monitoring_token_on_the_upload_api_says_which_token_it_needs(client, user):
    """The 403 tells the operator what they sent and what to send instead, with the right
    article (a monitoring token, an upload token)."""
    raw = create_token(user, purpose=ApiToken.Purpose.MONITORING)[1]
    response = Api(client, raw).create(filename="a", size_bytes=1)
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "wrong_token_purpose",
        "message": "this is a monitoring token; this needs an upload token",
    }


def test_an_upload_token_on_metrics_says_which_token_it_needs(db, settings, user):
    """The other way round: an upload token on /metrics is "an upload token", and the
    endpoint needs "a monitoring token"."""
    settings.PORTAL_METRICS_TOKEN = ""
    raw = create_token(user, name="laptop")[1]
    response = Client().get("/metrics", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "wrong_token_purpose",
        "message": "this is an upload token; this needs a monitoring token",
    }


def test_a_token_stores_its_first_ten_characters_to_tell_it_apart(user):
    """The prefix shown in the admin is the token's first ten characters ("pt_" and seven
    more): fewer would tell tokens apart less well, and the hash is of the whole token."""
    token, raw = create_token(user, name="laptop")
    stored = ApiToken.objects.get(pk=token.pk)
    assert stored.key_prefix == raw[:10]
    assert len(stored.key_prefix) == 10
    assert stored.key_hash == hash_token(raw)


def test_a_label_of_exactly_the_most_characters_is_kept_one_more_is_refused(user):
    """A 100-character label is accepted as it is; the 101st character is refused with the
    rule named (the bound is inclusive)."""
    label = "n" * 100
    token, _ = tokens.create_token_for_username("alice", name=label)
    assert ApiToken.objects.get(pk=token.pk).name == label
    with pytest.raises(tokens.InvalidName, match="at most 100 characters"):
        tokens.create_token_for_username("alice", name=label + "n")
    assert ApiToken.objects.count() == 1
