"""``manage.py portal_drain start|stop|status``: take one instance out of the balancer's
rotation for planned maintenance (docs/topology.md). Run it with the instance's
environment: the flag file is ``PORTAL_DRAIN_FILE``."""

from django.core.management.base import BaseCommand, CommandError

from portal.health import drain


class Command(BaseCommand):
    help = "Take this instance out of the load balancer's rotation (start) or back (stop)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=("start", "stop", "status"))

    def handle(self, *args, action, **options):
        try:
            if action == "start":
                path = drain.start_maintenance()
                self.stdout.write(f"draining: {path} exists, /ready answers 503")
            elif action == "stop":
                path, existed = drain.stop_maintenance()
                state = "removed" if existed else "was not there"
                self.stdout.write(f"serving: {path} {state}, /ready runs its checks again")
            elif (path := drain.drain_file()).exists():
                self.stdout.write(f"draining: {path} exists")
            else:
                self.stdout.write(f"serving: {path} does not exist")
        except OSError as exc:
            raise CommandError(f"{drain.drain_file()}: {exc.strerror or exc}") from None
