"""Bearer-token authentication for the upload API.

The presented token is hashed (SHA-256) and looked up by its hash, so the comparison the
database makes is between digests, never between a secret and a stored secret; the
fetched digest is compared once more with ``hmac.compare_digest``. ``last_used_at`` is
written at most once a minute per token (a conditional UPDATE), so uploading thousands
of parts does not turn every request into a write on the token row. The lookup is one
raw SQL statement (``active_token``): the ORM's query compiler cost more than the query.
"""

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
    """Return the user of the request's bearer token, or raise ``Unauthorized``.

    The token must be active, of an active user, and made for ``purpose``; a valid token
    made for something else raises ``Forbidden`` (it authenticated, it may not do this).
    """
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
    """The active token whose ``key_hash`` is ``digest``, of an active user, or None; the
    token has its purpose, hash and last use, ``token.user`` its primary key and user name
    (its other fields load on access, as after ``only``)."""
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
