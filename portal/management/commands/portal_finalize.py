"""``manage.py portal_finalize``: finish the assemblies whose process died (cron, every minute).

Exit codes (``portal.exitcodes``): 0 nothing left to take over (or stopped by
``--max-seconds``), 1 an assembly failed on a storage outage and stays for the next run,
2 bad usage or configuration.
"""

from portal.management.base import PortalCommand, add_job_arguments
from portal.services import finalize


class Command(PortalCommand):
    help = (
        "Take over finalizing upload sessions whose assembler died (its lease ran out) and "
        "finish them, exactly once. Safe on every host at once."
    )

    def add_arguments(self, parser):
        add_job_arguments(
            parser, "claim no new assembly after S seconds (the one in hand finishes)"
        )

    def handle(self, *args, **options):
        report = finalize.run_finalize_job(max_seconds=options["max_seconds"])
        self.render(report, as_json=options["json"], text=_text)


def _text(summary):
    return (
        f"portal_finalize: completed {summary['completed']}, failed {summary['failed']}, "
        f"busy {summary['busy']}, storage errors {summary['errors']} "
        f"({summary['stopped']}, {summary['duration_ms']} ms)"
    )
