"""``portal_cleanup``: the steps in order, in batches of short transactions that name rows by
primary key only (why: docs/design.md, "Periodic jobs"), one run at a time across hosts."""

import logging
import time

from portal import locks
from portal.models import JobRun
from portal.observability import log_event
from portal.services import jobs
from portal.services.cleanup.base import STEPS, CleanupOptions, StepRun
from portal.services.cleanup.orphans import cleanup_orphan_temp_parts
from portal.services.cleanup.prune import prune_old_failed_sessions
from portal.services.cleanup.stale import cleanup_stale_sessions
from portal.services.cleanup.sweep import sweep_temp_storage

logger = logging.getLogger("portal.services.cleanup")

JOB = "portal_cleanup"
STEP_FUNCTIONS = {
    "stale": cleanup_stale_sessions,
    "orphans": cleanup_orphan_temp_parts,
    "sweep": sweep_temp_storage,
    "prune": prune_old_failed_sessions,
}


def run_cleanup(options: CleanupOptions | None = None) -> list[StepRun]:
    """Run ``options.steps`` in order, logging each; a step that stopped early ends the run."""
    options = (options or CleanupOptions()).started()
    results = []
    for name in STEPS:
        if name not in options.steps:
            continue
        result = STEP_FUNCTIONS[name](options)
        results.append(result)
        _log_step(result, options.dry_run)
        if result.stopped_early:
            break
    return results


def run_cleanup_job(options: CleanupOptions | None = None) -> jobs.JobReport:
    """``portal_cleanup``: one run across all hosts, recorded (not in a dry run), reported."""
    options = options or CleanupOptions()
    started = time.monotonic()
    with jobs.job_run(JOB, record=not options.dry_run) as run:
        try:
            with locks.hold(JOB):
                abandoned = run.close_abandoned_peers()
                results = run_cleanup(options)
        except locks.LockBusy:
            results, abandoned = None, 0
        summary = _summary(results, options.dry_run, started, abandoned)
        run.outcome = summary["outcome"]
        run.counts = {name: step["counts"] for name, step in summary["steps"].items()}
        _log_summary(summary)
    problem = (
        f"{summary['failed']} deletion(s) failed and stay tracked; the next run retries them "
        "(see the cleanup.step records for the keys and reasons)"
    )
    return jobs.JobReport(summary, problem if summary["failed"] else "")


def _outcome(results, failed, stopped_early):
    if results is None:
        return JobRun.Outcome.SKIPPED
    if failed or stopped_early:
        return JobRun.Outcome.PARTIAL
    return JobRun.Outcome.OK


def _summary(results, dry_run, started, abandoned):
    """The run as one dict: the ``cleanup.finished`` fields and the ``--json`` line."""
    steps = {result.step: result.as_dict() for result in results or ()}
    failed = sum(step["failed"] for step in steps.values())
    stopped_early = any(step["stopped_early"] for step in steps.values())
    return {
        "command": JOB,
        "outcome": str(_outcome(results, failed, stopped_early)),
        "dry_run": dry_run,
        "stopped_early": stopped_early,
        "failed": failed,
        "duration_ms": int((time.monotonic() - started) * 1000),
        "abandoned_runs_closed": abandoned,
        "steps": steps,
    }


def _log_step(result, dry_run):
    log_event(
        logger,
        "cleanup.step",
        f"cleanup step {result.step}" + (" (dry run)" if dry_run else ""),
        level=logging.WARNING if result.failed else logging.INFO,
        step=result.step,
        counts=result.counts,
        failed=result.failed,
        failures=result.failures,
        stopped_early=result.stopped_early,
        dry_run=dry_run,
        duration_ms=result.duration_ms,
    )


def _log_summary(summary):
    if summary["outcome"] == JobRun.Outcome.SKIPPED:
        log_event(
            logger,
            "cleanup.skipped",
            "another portal_cleanup run holds the lock; skipped",
            dry_run=summary["dry_run"],
        )
        return
    log_event(
        logger,
        "cleanup.finished",
        "cleanup finished" + (" (dry run)" if summary["dry_run"] else ""),
        level=logging.WARNING if summary["failed"] else logging.INFO,
        **{k: v for k, v in summary.items() if k != "command"},
    )
