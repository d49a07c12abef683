"""``manage.py portal_dispatch``: deliver due outbox events to the runner (cron, every minute)."""

from django.core.management.base import CommandError

from portal import exitcodes, limits
from portal.management.base import JobCommand, bounded_int
from portal.services import outbox


class Command(JobCommand):
    help = "Deliver due outbox events to PORTAL_RUNNER_ENDPOINT (at least once, signed)."
    max_seconds_help = "stop claiming and sending after S seconds (claimed, unsent events go back)"

    def add_job_arguments(self, parser):
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

    def run(self, options):
        try:
            return outbox.run_dispatch(
                limit=options["limit"],
                max_seconds=options["max_seconds"],
                retry_failed=options["retry_failed"],
            )
        except outbox.ConfigurationError as exc:
            raise CommandError(f"Configuration error: {exc}", returncode=exitcodes.USAGE) from None

    def text(self, summary):
        requeued = f"requeued {summary['requeued']}, " if summary["requeued"] else ""
        return (
            f"portal_dispatch: {requeued}delivered {summary['delivered']}, "
            f"retried {summary['retried']}, gave up {summary['gave_up']}, "
            f"released {summary['released']}, lost lease {summary['lost_lease']} "
            f"({summary['stopped']}, {summary['duration_ms']} ms)"
        )
