"""API tokens: stored hashed, shown once by the command, required by every API endpoint."""

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal import auth
from portal.models import ApiToken
from portal.services.tokens import hash_token
from tests.api_helpers import BASE, Api, error_code, make_token
from tests.commands import run_command
from tests.processes import run_manage


def create_token(*args):
    return run_command("portal_create_token", *args)


def test_command_prints_the_token_once_and_stores_only_its_hash(subprocess_env, user):
    """The process boundary: exit 0, the token alone on stdout, the note on stderr."""
    result = run_manage(subprocess_env, "portal_create_token", "alice", "--name", "laptop")
    assert result.returncode == 0, result.stderr
    raw = result.stdout.strip()
    assert raw.startswith("pt_") and len(raw) > 40
    token = ApiToken.objects.get(user=user)
    assert token.name == "laptop"
    assert token.key_hash == hash_token(raw)
    assert raw.startswith(token.key_prefix) and len(token.key_prefix) < 12
    assert raw not in result.stderr
    stored = [str(v) for v in ApiToken.objects.values_list().get()]
    assert raw not in stored


def test_command_refuses_an_unknown_user_unless_asked_to_create_it(db):
    result = create_token("carol")
    assert result.code == 2
    assert "no user 'carol'; pass --create-user to create it" in result.err
    assert not get_user_model().objects.filter(username="carol").exists()

    result = create_token("carol", "--create-user")
    assert result.code == 0, result.err
    carol = get_user_model().objects.get(username="carol")
    assert not carol.has_usable_password()
    assert ApiToken.objects.get(user=carol).key_hash == hash_token(result.out.strip())


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["", "--create-user"], "username ''"),
        (["<script>", "--create-user"], "username '<script>'"),
        (["ops/team", "--create-user"], "username 'ops/team'"),
        (["two words", "--create-user"], "username 'two words'"),
        (["x" * 151, "--create-user"], "at most 150"),
        (["alice", "--name", "tab\there"], "control characters"),
        (["alice", "--name", "n" * 101], "at most 100"),
    ],
)
def test_the_command_refuses_bad_names_with_exit_2(user, args, says):
    result = create_token(*args)
    assert result.code == 2, result.out + result.err
    assert says in result.err
    assert get_user_model().objects.count() == 1  # alice only: nobody was created
    assert not ApiToken.objects.exists()


def test_a_monitoring_token_is_made_for_monitoring(user):
    result = create_token("alice", "--monitoring", "--name", "prometheus")
    assert result.code == 0, result.err
    assert ApiToken.objects.get().purpose == ApiToken.Purpose.MONITORING
    assert "monitoring token" in result.err


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic abc",
        "Token pt_x",
        "Bearer pt_not-a-real-token",
        "Bearer pt_" + "x" * 5000,
        "Bearer pt_' OR 1=1 --",
        "Bearer pt_\x00\u2028",
    ],
)
def test_missing_or_bad_token_is_401(client, user, header):
    headers = {} if header is None else {"Authorization": header}
    for response in (
        client.post(BASE, data="{}", content_type="application/json", headers=headers),
        client.get(f"{BASE}/00000000-0000-0000-0000-000000000000", headers=headers),
        client.get("/api/v1/nothing-here", headers=headers),
    ):
        assert response.status_code == 401
        assert error_code(response) in ("missing_token", "invalid_token")


def test_revoked_token_and_inactive_user_are_401(client, user):
    raw = make_token(user)
    api = Api(client, raw)
    assert api.status("00000000-0000-0000-0000-000000000000").status_code == 404
    ApiToken.objects.update(is_active=False)
    assert api.status("00000000-0000-0000-0000-000000000000").status_code == 401
    ApiToken.objects.update(is_active=True)
    user.is_active = False
    user.save()
    assert api.status("00000000-0000-0000-0000-000000000000").status_code == 401


def test_last_used_at_is_written_at_most_once_a_minute(client, user):
    api = Api(client, make_token(user))
    with time_machine.travel("2030-01-01 12:00:00Z", tick=False):
        api.status("00000000-0000-0000-0000-000000000000")
        first = ApiToken.objects.get().last_used_at
        assert first.isoformat().startswith("2030-01-01T12:00:00")
    with time_machine.travel("2030-01-01 12:00:30Z", tick=False):
        api.status("00000000-0000-0000-0000-000000000000")
        assert ApiToken.objects.get().last_used_at == first
    with time_machine.travel("2030-01-01 12:01:30Z", tick=False):
        api.status("00000000-0000-0000-0000-000000000000")
        assert ApiToken.objects.get().last_used_at > first


# Every endpoint family that takes a bearer token (add /metrics here when it exists).
TOKEN_ENDPOINTS = [
    ("POST", BASE),
    ("GET", f"{BASE}/00000000-0000-0000-0000-000000000000"),
    ("PUT", f"{BASE}/00000000-0000-0000-0000-000000000000/parts/1"),
    ("POST", f"{BASE}/00000000-0000-0000-0000-000000000000/finalize"),
    ("DELETE", f"{BASE}/00000000-0000-0000-0000-000000000000"),
    ("GET", "/status?format=json"),
]


@pytest.mark.parametrize(("method", "path"), TOKEN_ENDPOINTS)
def test_a_token_with_the_right_prefix_and_a_wrong_tail_is_401(client, user, method, path):
    raw = make_token(user)
    prefix = ApiToken.objects.get(user=user).key_prefix
    assert raw.startswith(prefix)
    forged = prefix + ("A" if raw[len(prefix)] != "A" else "B") + raw[len(prefix) + 1 :]
    assert forged != raw and len(forged) == len(raw)

    response = client.generic(method, path, headers={"Authorization": f"Bearer {forged}"})

    assert response.status_code == 401, (path, response.status_code)
    assert error_code(response) == "invalid_token"
    genuine = client.generic(method, path, headers={"Authorization": f"Bearer {raw}"})
    assert genuine.status_code != 401, (path, genuine.status_code)


def test_active_token_reads_what_the_orm_reads_and_refuses_what_it_refuses(user, other_user):
    raw = make_token(user)
    make_token(other_user)  # another user's token, which the lookup must not return
    digest = hash_token(raw)
    with CaptureQueriesContext(connection) as queries:
        token = auth.active_token(digest)
        read = (token.pk, token.purpose, token.key_hash, token.last_used_at)
        owner = (token.user.pk, token.user.get_username())
    assert len(queries.captured_queries) == 1  # the user's name came with the token
    expected = ApiToken.objects.select_related("user").get(key_hash=digest)
    assert read == (expected.pk, "upload", digest, None)
    assert owner == (user.pk, "alice")
    assert token.user.email == user.email  # another field loads when asked for
    assert auth.active_token(hash_token(raw + "x")) is None

    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    assert auth.active_token(digest).last_used_at == ApiToken.objects.get(pk=token.pk).last_used_at
    ApiToken.objects.filter(pk=token.pk).update(is_active=False)
    assert auth.active_token(digest) is None
    ApiToken.objects.filter(pk=token.pk).update(is_active=True)
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    assert auth.active_token(digest) is None


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_scheme_is_case_insensitive_and_spaces_around_the_token_are_ignored(
    client, user, scheme
):
    """RFC 7235: the auth scheme is case-insensitive; some clients send it lower-case."""
    raw = make_token(user)
    response = client.get(
        f"{BASE}/00000000-0000-0000-0000-000000000000",
        headers={"Authorization": f"{scheme} {raw}  "},
    )
    assert response.status_code == 404
    assert error_code(response) == "session_not_found"
