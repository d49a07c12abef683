"""``manage.py portal_dispatch``: deliver due outbox events to the runner (cron, every minute).

Exit codes (``portal.exitcodes``): 0 every attempt delivered or rescheduled, 1 an event
gave up in this run, 2 bad usage or configuration (with JSON logs, the reason is one JSON
error record).
"""

from django.core.management.base import CommandError

from portal import exitcodes, limits
from portal.management.base import PortalCommand, add_job_arguments, bounded_int
from portal.services import outbox


class Command(PortalCommand):
    help = "Deliver due outbox events to PORTAL_RUNNER_ENDPOINT (at least once, signed)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--limit",
            type=bounded_int(limits.MAX_DISPATCH_LIMIT),
            help="attempt at most N deliveries in this run",
        )
        parser.add_argument(
            "--retry-failed",
            action="store_true",
            help="requeue every failed event (attempts reset, due now) before dispatching",
        )
        add_job_arguments(
            parser, "stop claiming and sending after S seconds (claimed, unsent events go back)"
        )

    def handle(self, *args, **options):
        try:
            report = outbox.run_dispatch(
                limit=options["limit"],
                max_seconds=options["max_seconds"],
                retry_failed=options["retry_failed"],
            )
        except outbox.ConfigurationError as exc:
            raise CommandError(f"Configuration error: {exc}", returncode=exitcodes.USAGE) from None
        self.render(report, as_json=options["json"], text=_text)


def _text(summary):
    requeued = f"requeued {summary['requeued']}, " if summary["requeued"] else ""
    return (
        f"portal_dispatch: {requeued}delivered {summary['delivered']}, "
        f"retried {summary['retried']}, gave up {summary['gave_up']}, "
        f"released {summary['released']}, lost lease {summary['lost_lease']} "
        f"({summary['stopped']}, {summary['duration_ms']} ms)"
    )
