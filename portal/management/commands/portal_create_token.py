"""``manage.py portal_create_token USERNAME [--name N] [--create-user]``: print a new API token.

The token is printed once, on stdout, and never stored: only its sha256 and its first
characters are kept, so a lost token is replaced by creating a new one.
"""

from django.core.management.base import BaseCommand, CommandError

from portal import exitcodes
from portal.services.tokens import UnknownUser, create_token_for_username


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print it once."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="a label, e.g. the client's host")
        parser.add_argument(
            "--create-user",
            action="store_true",
            help="create the user (without a password) if it does not exist",
        )

    def handle(self, *args, username, name, create_user, **options):
        if len(name) > 100:
            raise CommandError("--name may have at most 100 characters", returncode=exitcodes.USAGE)
        try:
            token, raw = create_token_for_username(username, name=name, create_user=create_user)
        except UnknownUser:
            raise CommandError(
                f"no user {username!r}; pass --create-user to create it", returncode=exitcodes.USAGE
            ) from None
        self.stdout.write(raw)
        self.stderr.write(
            f"token {token.key_prefix}… created for {username!r}; it is shown only once"
        )
