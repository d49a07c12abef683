"""``manage.py portal_cleanup``: expire stale sessions, reclaim temp objects, prune (cron)."""

import sys

from portal import limits
from portal.management.base import JobCommand, bounded_int
from portal.services import cleanup


class Command(JobCommand):
    help = (
        "Expire stale upload sessions, delete temp objects of finished sessions, sweep "
        "untracked temp objects and prune old rows. One run at a time across all hosts."
    )
    max_seconds_help = "stop between batches after S seconds (exit 0, stopped_early in the summary)"

    def add_job_arguments(self, parser):
        parser.add_argument(
            "--only",
            nargs="+",
            action="extend",
            choices=cleanup.STEPS,
            metavar="STEP",
            help=f"run only these steps (of {', '.join(cleanup.STEPS)}; always in that order)",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="report what would be done; change nothing in the database or storage",
        )
        parser.add_argument(
            "--batch-size",
            type=bounded_int(limits.MAX_BATCH_SIZE),
            help="rows per batch and transaction (default PORTAL_CLEANUP_BATCH_SIZE)",
        )

    def run(self, options):
        return cleanup.run_cleanup_job(
            cleanup.CleanupOptions(
                steps=tuple(options["only"] or cleanup.STEPS),
                batch_size=options["batch_size"],
                dry_run=options["dry_run"],
                max_seconds=options["max_seconds"],
                on_batch=self._progress(options),
            )
        )

    def _progress(self, options):
        """One line per batch on stderr with ``-v 2`` or on a terminal."""
        if options["verbosity"] < 2 and not sys.stderr.isatty():
            return None

        def show(result):
            counts = " ".join(f"{name}={value}" for name, value in result.counts.items())
            self.stderr.write(
                f"cleanup {result.step}: batch {result.batches} {counts}"
                + (f" failed={result.failed}" if result.failed else "")
                + f" ({result.duration_ms / 1000:.1f} s)"
            )

        return show
