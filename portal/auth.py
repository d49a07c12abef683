"""Bearer-token authentication for the upload API: the token is looked up by its SHA-256,
so the database compares digests, never secrets; ``last_used_at`` is written at most once
a minute, so thousands of parts are not thousands of writes on the token row."""

import hmac
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from portal.models import ApiToken
from portal.services.errors import Forbidden, Unauthorized
from portal.services.part_sql import names
from portal.services.tokens import hash_token

LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_TOKEN_CHARS = 200


def authenticate(request, purpose=ApiToken.Purpose.UPLOAD):
    """The user of the request's active bearer token; 401 without one, 403 for a token
    made for another ``purpose``."""
    token = _valid_token(request)
    if token.purpose != purpose:
        raise Forbidden(
            f"this is a{'n' if token.purpose == 'upload' else ''} {token.purpose} token; "
            f"this needs a{'n' if purpose == 'upload' else ''} {purpose} token",
            code="wrong_token_purpose",
        )
    _touch(token)
    return token.user


def _valid_token(request):
    raw = _bearer_token(request.META.get("HTTP_AUTHORIZATION", ""))
    digest = hash_token(raw)
    token = active_token(digest)
    if token is None or not hmac.compare_digest(token.key_hash, digest):
        raise Unauthorized("invalid or revoked token", code="invalid_token")
    return token


def _token_sql():
    (tokens, t), (users, u) = names(ApiToken), names(User)
    return (
        f"SELECT t.{t.id}, t.{t.purpose}, t.{t.key_hash}, t.{t.last_used_at}, t.{t.user},"
        f" u.{getattr(u, User.USERNAME_FIELD)} AS user_name FROM {tokens} t"
        f" INNER JOIN {users} u ON u.{u.id} = t.{t.user}"
        f" WHERE t.{t.key_hash} = %s AND t.{t.is_active} = %s AND u.{u.is_active} = %s"
    )


User = get_user_model()
_USER_FIELDS = ["id", User._meta.get_field(User.USERNAME_FIELD).attname]
_TOKEN_SQL = _token_sql()


def active_token(digest):
    """The active token of an active user whose ``key_hash`` is ``digest``, or None: one raw
    statement (the ORM's compiler cost more than the query); other fields load on access."""
    found = list(ApiToken.objects.raw(_TOKEN_SQL, [digest, True, True]))
    if not found:
        return None
    token = found[0]
    token.user = User.from_db(connection.alias, _USER_FIELDS, [token.user_id, token.user_name])
    return token


def _bearer_token(header):
    scheme, _, raw = header.partition(" ")
    raw = raw.strip()
    if scheme.lower() != "bearer" or not raw:
        raise Unauthorized("send the header 'Authorization: Bearer <token>'", code="missing_token")
    if len(raw) > MAX_TOKEN_CHARS:
        raise Unauthorized("invalid or revoked token", code="invalid_token")
    return raw


def _touch(token):
    """Record use at most once per ``LAST_USED_RESOLUTION``: no write while it is fresh."""
    now = timezone.now()
    stale = now - LAST_USED_RESOLUTION
    if token.last_used_at is not None and token.last_used_at >= stale:
        return
    ApiToken.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale), pk=token.pk
    ).update(last_used_at=now)
