"""``manage.py portal_cleanup``: expire stale sessions, reclaim temp objects, prune (cron).

Thin: parses options, takes the cluster-wide lock, calls ``portal.services.cleanup`` and
renders its result. Exit codes: 0 done, skipped (another run holds the lock) or stopped
early by ``--max-seconds`` (the summary says ``stopped_early``; the next run continues),
1 finished but some deletions failed (they stay tracked; the next run retries them),
2 bad usage or configuration.
"""

import json
import logging
import sys
import time

from django.core.management.base import CommandError

from portal import locks
from portal.management.base import PortalCommand, positive_float, positive_int
from portal.models import JobRun
from portal.observability import log_event
from portal.services import cleanup
from portal.services.jobs import job_run

logger = logging.getLogger("portal.services.cleanup")
LOCK_NAME = "portal_cleanup"


class Command(PortalCommand):
    help = (
        "Expire stale upload sessions, delete temp objects of finished sessions, sweep "
        "untracked temp objects and prune old rows. One run at a time across all hosts."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
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
            type=positive_int,
            help="rows per batch and transaction (default PORTAL_CLEANUP_BATCH_SIZE)",
        )
        parser.add_argument(
            "--max-seconds",
            type=positive_float,
            help="stop between batches after S seconds (exit 0, stopped_early in the summary)",
        )
        parser.add_argument("--json", action="store_true", help="print one JSON summary line")

    def handle(self, *args, **options):
        dry_run = options["dry_run"]
        started = time.monotonic()
        with job_run("portal_cleanup", record=not dry_run) as run:
            try:
                with locks.hold(LOCK_NAME):
                    abandoned = run.close_abandoned_peers()
                    results = cleanup.run_cleanup(
                        steps=options["only"] or cleanup.STEPS,
                        batch_size=options["batch_size"],
                        dry_run=dry_run,
                        should_stop=_deadline(options["max_seconds"]),
                        on_batch=self._progress(options),
                    )
            except locks.LockBusy:
                run.outcome = JobRun.Outcome.SKIPPED
                results, abandoned = None, 0
            summary = _summary(results, dry_run=dry_run, started=started, abandoned=abandoned)
            run.counts = {name: step["counts"] for name, step in summary["steps"].items()}
            if summary["failed"] or summary["stopped_early"]:
                run.outcome = JobRun.Outcome.PARTIAL
            self._report(summary, as_json=options["json"])
        if summary["failed"]:
            raise CommandError(
                f"{summary['failed']} deletion(s) failed and stay tracked; the next run "
                "retries them (see the cleanup.step records for the keys and reasons)",
                returncode=1,
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

    def _report(self, summary, *, as_json):
        if summary["outcome"] == "skipped":
            log_event(
                logger,
                "cleanup.skipped",
                "another portal_cleanup run holds the lock; skipped",
                dry_run=summary["dry_run"],
            )
        else:
            log_event(
                logger,
                "cleanup.finished",
                "cleanup finished" + (" (dry run)" if summary["dry_run"] else ""),
                level=logging.WARNING if summary["failed"] else logging.INFO,
                **{k: v for k, v in summary.items() if k != "command"},
            )
        if as_json:
            self.stdout.write(json.dumps(summary, default=str))


def _deadline(max_seconds):
    if max_seconds is None:
        return None
    end = time.monotonic() + max_seconds
    return lambda: time.monotonic() >= end


def _summary(results, *, dry_run, started, abandoned):
    """The run as one dict: the ``cleanup.finished`` fields and the ``--json`` line."""
    steps = {result.step: result.as_dict() for result in results or ()}
    failed = sum(step["failed"] for step in steps.values())
    stopped_early = any(step["stopped_early"] for step in steps.values())
    if results is None:
        outcome = "skipped"
    elif failed:
        outcome = "partial"
    else:
        outcome = "ok"
    return {
        "command": "portal_cleanup",
        "outcome": outcome,
        "dry_run": dry_run,
        "stopped_early": stopped_early,
        "failed": failed,
        "duration_ms": int((time.monotonic() - started) * 1000),
        "abandoned_runs_closed": abandoned,
        "steps": steps,
    }
