"""``manage.py portal_drain start|stop|status``: planned maintenance of one instance.

``start`` creates the flag file ``PORTAL_DRAIN_FILE`` (default ``$PORTAL_DATA_DIR/drain``):
from the next probe on, ``/ready`` answers 503 ``draining`` and the load balancer takes
the instance out of rotation, while requests already sent to it finish and ``/health``
stays 200. ``stop`` removes the file: the balancer puts it back after ``rise`` checks.
Run it with the instance's environment (the same ``PORTAL_DATA_DIR``/``PORTAL_DRAIN_FILE``).
"""

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
            else:
                self.stdout.write(self.status())
        except OSError as exc:
            raise CommandError(f"{drain.drain_file()}: {exc.strerror or exc}") from None

    @staticmethod
    def status():
        path = drain.drain_file()
        if path.exists():
            return f"draining: {path} exists"
        return f"serving: {path} does not exist"
