"""``manage.py portal_dispatch``: deliver due outbox events to the runner (cron, every minute).

Thin: validates the configuration, calls ``portal.services.outbox``, renders the result.
Exit codes: 0 every attempt delivered or rescheduled, 1 an event gave up in this run,
2 bad usage or configuration (with JSON logs, the reason is one JSON error record).
"""

import json

from django.core.management.base import CommandError

from portal.management.base import PortalCommand, positive_float, positive_int
from portal.models import JobRun
from portal.services import outbox
from portal.services.jobs import job_run


class Command(PortalCommand):
    help = "Deliver due outbox events to PORTAL_RUNNER_ENDPOINT (at least once, signed)."
    # The dispatch settings are validated below with exit code 2; the project's other
    # system checks belong to `manage.py check` and must not stop delivery.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--limit", type=positive_int, help="attempt at most N deliveries in this run"
        )
        parser.add_argument(
            "--max-seconds",
            type=positive_float,
            help="stop claiming and sending after S seconds (claimed, unsent events go back)",
        )
        parser.add_argument(
            "--retry-failed",
            action="store_true",
            help="requeue every failed event (attempts reset, due now) before dispatching",
        )
        parser.add_argument("--json", action="store_true", help="print one JSON summary line")

    def handle(self, *args, **options):
        try:
            config = outbox.DispatchConfig.from_settings()
        except outbox.ConfigurationError as exc:
            raise CommandError(f"Configuration error: {exc}", returncode=2) from None
        with job_run("portal_dispatch") as run:
            requeued = outbox.requeue_failed() if options["retry_failed"] else 0
            result = outbox.dispatch_due(
                config, limit=options["limit"], max_seconds=options["max_seconds"]
            )
            result.requeued = requeued
            run.counts = result.counts()
            if result.gave_up:
                run.outcome = JobRun.Outcome.PARTIAL
        self._render(result, as_json=options["json"])
        if result.gave_up:
            raise CommandError(
                f"{result.gave_up} event(s) gave up after PORTAL_OUTBOX_MAX_ATTEMPTS attempts "
                "and are now failed; fix the runner, then run portal_dispatch --retry-failed.",
                returncode=1,
            )

    def _render(self, result, *, as_json):
        if as_json:
            self.stdout.write(json.dumps(result.as_dict(), sort_keys=True))
            return
        requeued = f"requeued {result.requeued}, " if result.requeued else ""
        self.stdout.write(
            f"portal_dispatch: {requeued}delivered {result.delivered}, "
            f"retried {result.retried}, gave up {result.gave_up}, "
            f"released {result.released}, lost lease {result.lost_lease} "
            f"({result.stopped}, {result.duration_ms} ms)"
        )
