"""API tokens: shown once, stored only as their SHA-256 and first characters (to tell
them apart), so a lost token is replaced, not retrieved."""

import hashlib
import secrets

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from portal.models import ApiToken

TOKEN_PREFIX = "pt_"
PREFIX_CHARS = 10
MAX_LABEL_CHARS = 100


class UnknownUser(Exception):
    """The user named for a new token does not exist (and was not to be created)."""


class InvalidName(ValueError):
    """A username or token label that the portal refuses; the message says which rule."""


def validated_username(username):
    """The username as the user model's own field validates it (blank, length, characters)."""
    User = get_user_model()
    field = User._meta.get_field(User.USERNAME_FIELD)
    try:
        return field.clean(username, None)
    except ValidationError as exc:
        raise InvalidName(f"username {username!r}: {' '.join(exc.messages)}") from None


def validated_label(name):
    if len(name) > MAX_LABEL_CHARS:
        raise InvalidName(f"--name may have at most {MAX_LABEL_CHARS} characters")
    if any(not char.isprintable() for char in name):
        raise InvalidName("--name may not contain control characters")
    return name


def hash_token(raw):
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(user, *, name="", purpose=ApiToken.Purpose.UPLOAD):
    """Create a token for ``user``; returns ``(ApiToken, raw)``. The raw token is not stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        purpose=purpose,
        key_prefix=raw[:PREFIX_CHARS],
        key_hash=hash_token(raw),
    )
    return token, raw


def create_token_for_username(
    username, *, name="", create_user=False, purpose=ApiToken.Purpose.UPLOAD
):
    """A token for ``username``, creating the user (without a usable password) if asked."""
    User = get_user_model()
    name = validated_label(name)
    with transaction.atomic():
        user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
        if user is None:
            if not create_user:
                raise UnknownUser(username)
            user = User(**{User.USERNAME_FIELD: validated_username(username)})
            user.set_unusable_password()
            user.save()
        return create_token(user, name=name, purpose=purpose)
