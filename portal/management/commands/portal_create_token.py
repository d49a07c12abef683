"""``manage.py portal_create_token USERNAME``: print a new API token, once.

Only its sha256 and first characters are stored, so a lost token is replaced, never
shown again. A ``--monitoring`` token only reads ``/status`` and the metrics: give a
monitoring system that, never an upload token.
"""

from django.core.management.base import BaseCommand, CommandError

from portal import exitcodes
from portal.models import ApiToken
from portal.services.tokens import InvalidName, UnknownUser, create_token_for_username


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
        parser.add_argument(
            "--monitoring",
            action="store_true",
            help="a token that reads /status and the metrics, and cannot upload",
        )

    def handle(self, *args, username, name, create_user, monitoring, **options):
        purpose = ApiToken.Purpose.MONITORING if monitoring else ApiToken.Purpose.UPLOAD
        try:
            token, raw = create_token_for_username(
                username, name=name, create_user=create_user, purpose=purpose
            )
        except UnknownUser:
            raise CommandError(
                f"no user {username!r}; pass --create-user to create it", returncode=exitcodes.USAGE
            ) from None
        except InvalidName as exc:
            raise CommandError(str(exc), returncode=exitcodes.USAGE) from None
        self.stdout.write(raw)
        self.stderr.write(
            f"{purpose} token {token.key_prefix}… created for {username!r}; it is shown only once"
        )
