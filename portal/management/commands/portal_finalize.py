"""``manage.py portal_finalize``: finish the assemblies whose process died (cron, every minute)."""

from portal.management.base import JobCommand
from portal.services import finalize


class Command(JobCommand):
    help = (
        "Take over finalizing upload sessions whose assembler died (its lease ran out) and "
        "finish them, exactly once. Safe on every host at once."
    )
    max_seconds_help = "claim no new assembly after S seconds (the one in hand finishes)"

    def run(self, options):
        return finalize.run_finalize_job(max_seconds=options["max_seconds"])

    def text(self, summary):
        return (
            f"portal_finalize: completed {summary['completed']}, failed {summary['failed']}, "
            f"busy {summary['busy']}, storage errors {summary['errors']} "
            f"({summary['stopped']}, {summary['duration_ms']} ms)"
        )
