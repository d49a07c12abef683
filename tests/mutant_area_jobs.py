"""Area catalog ``jobs`` (issue #31): the cleanup steps and job runs. The outbox, HTTP client
and gate: ``mutant_area_jobs_outbox.py``; the commands: ``mutant_area_jobs_commands.py``.

Left out as equivalent: prune counting the final keys it asked to delete instead of those
deleted (a failed deletion ends the batch before it counts); prune's event filter without
``status=delivered`` (only a delivery sets ``delivered_at``)."""

from tests.mutant_catalog import Mutant

PC = "tests/test_pins_jobs.py"
PO = "tests/test_pins_jobs_outbox.py"
PM = "tests/test_pins_jobs_commands.py"
PU = "tests/test_pins_jobs_upload.py"
_CLEANUP = (PC, "tests/test_cleanup.py", "tests/test_cleanup_command.py")
_OUTBOX = (PO, "tests/test_outbox.py", "tests/test_outbox_claims.py", "tests/test_dispatch.py")
_HTTP = (PO, "tests/test_httpclient.py", "tests/test_outbox.py", "tests/test_dispatch.py")
_UPLOAD = (PU, "tests/test_upload_client.py", "tests/test_upload_client_busy.py")
_CMD = (PM, "tests/test_commands.py", "tests/test_cleanup_command.py", "tests/test_dispatch.py")

CLEANUP = "portal/services/cleanup/__init__.py"
BASE = "portal/services/cleanup/base.py"
ORPHANS = "portal/services/cleanup/orphans.py"
PRUNE = "portal/services/cleanup/prune.py"
STALE = "portal/services/cleanup/stale.py"
SWEEP = "portal/services/cleanup/sweep.py"
JOBS = "portal/services/jobs.py"


def m(name, path, old, new, tests):
    """One careless change of the area: a single edit of ``path``."""
    return Mutant("jobs: " + name, path, ((old, new),), tests)


MUTANTS = (
    m(
        "a step that stopped early does not end the run",
        CLEANUP,
        "        if result.stopped_early:\n            break",
        "        if False:\n            break",
        _CLEANUP,
    ),
    m(
        "a run that stopped early is recorded ok, not partial",
        CLEANUP,
        "    if failed or stopped_early:",
        "    if failed:",
        _CLEANUP,
    ),
    m(
        "a dry run is recorded as a job run",
        CLEANUP,
        "jobs.job_run(JOB, record=not options.dry_run)",
        "jobs.job_run(JOB, record=True)",
        _CLEANUP,
    ),
    m(
        "a cleanup step with failures logs at INFO",
        CLEANUP,
        "        level=logging.WARNING if result.failed else logging.INFO,\n        step=",
        "        level=logging.INFO,\n        step=",
        _CLEANUP,
    ),
    m(
        "the cleanup run does not close its dead predecessors",
        CLEANUP,
        "abandoned = run.close_abandoned_peers()",
        "abandoned = 0",
        _CLEANUP,
    ),
    m(
        "the skipped run reports outcome ok",
        CLEANUP,
        "        return JobRun.Outcome.SKIPPED\n",
        "        return JobRun.Outcome.OK\n",
        _CLEANUP,
    ),
    m(
        "max_seconds drops the caller's own should_stop",
        BASE,
        "stop = _stop_at(time.monotonic() + self.max_seconds, stop)",
        "stop = _stop_at(time.monotonic() + self.max_seconds)",
        _CLEANUP,
    ),
    m(
        "failures kept for the report are capped per batch, not per step",
        BASE,
        "[: MAX_REPORTED_FAILURES - len(self.failures)]",
        "[:MAX_REPORTED_FAILURES]",
        _CLEANUP,
    ),
    m(
        "a stop request is not reported as stopped_early",
        BASE,
        "            self.stopped_early = True\n        return self.stopped_early",
        "            return True\n        return self.stopped_early",
        _CLEANUP,
    ),
    m(
        "a deletion's requests are not counted",
        BASE,
        '    run.add("delete_requests", outcome.requests)\n',
        "",
        _CLEANUP,
    ),
    m(
        "a step's progress callback never runs",
        BASE,
        "            self.options.on_batch(self)",
        "            pass",
        _CLEANUP,
    ),
    m(
        "a session split over two pages is counted twice",
        ORPHANS,
        'run.add("sessions", len(terminal - {counted}))',
        'run.add("sessions", len(terminal))',
        _CLEANUP,
    ),
    m(
        "a dry run of orphans counts parts of sessions that expire exactly now",
        ORPHANS,
        "ended |= Q(status__in=UploadSession.OPEN_STATUSES, expires_at__lt=run.now)",
        "ended |= Q(status__in=UploadSession.OPEN_STATUSES, expires_at__lte=run.now)",
        _CLEANUP,
    ),
    m(
        "a dry run of orphans ignores sessions stale would expire",
        ORPHANS,
        "    if run.dry_run:\n        ended |=",
        "    if False:\n        ended |=",
        _CLEANUP,
    ),
    m(
        "the last batch's keys are not cleared",
        ORPHANS,
        "        _clear_keys(in_flight, run)  # not on an error",
        "        pass  # not on an error",
        _CLEANUP,
    ),
    m(
        "orphans go on after a stop request",
        ORPHANS,
        "            if run.stop_requested():\n                break\n        if pending:",
        "            if False:\n                break\n        if pending:",
        _CLEANUP,
    ),
    m(
        "orphans delete the temp objects of open sessions",
        ORPHANS,
        "if session_id in terminal)",
        ")",
        _CLEANUP,
    ),
    m(
        "prune keeps failed sessions for hours, not days",
        PRUNE,
        "session_cutoff = run.now - timedelta(days=settings.PORTAL_FAILED_SESSION_RETENTION_DAYS)",
        "session_cutoff = run.now - timedelta(hours=settings.PORTAL_FAILED_SESSION_RETENTION_DAYS)",
        _CLEANUP,
    ),
    m(
        "prune deletes delivered events exactly at the retention cutoff",
        PRUNE,
        "delivered_at__lt=cutoff",
        "delivered_at__lte=cutoff",
        _CLEANUP,
    ),
    m(
        "prune deletes job runs by the failed-session retention",
        PRUNE,
        "JobRun.objects.filter(started_at__lt=cutoff)",
        "JobRun.objects.filter(started_at__lt=session_cutoff)",
        _CLEANUP,
    ),
    m(
        "prune deletes sessions whose parts still hold temp objects",
        PRUNE,
        "        .exclude(Exists(holding_temp_key))\n",
        "",
        _CLEANUP,
    ),
    m(
        "prune leaves a late-failed finalize's final object",
        PRUNE,
        "storage_key or storage.new_final_key(file_id, now=created_at)",
        "storage_key",
        _CLEANUP,
    ),
    m(
        "prune's dry run closes abandoned runs",
        PRUNE,
        "dead.count() if run.dry_run else jobs.abandon(dead, run.now)",
        "jobs.abandon(dead, run.now)",
        _CLEANUP,
    ),
    m(
        "prune goes on to events and runs after it stopped early",
        PRUNE,
        "    _prune_sessions(run, session_cutoff)\n    if not run.stopped_early:",
        "    _prune_sessions(run, session_cutoff)\n    if True:",
        _CLEANUP,
    ),
    m(
        "a dry run counts sessions that expire exactly now",
        STALE,
        "status__in=UploadSession.OPEN_STATUSES, expires_at__lt=run.now",
        "status__in=UploadSession.OPEN_STATUSES, expires_at__lte=run.now",
        _CLEANUP,
    ),
    m(
        "expired sessions get another failure reason",
        STALE,
        'UploadSession.Status.FAILED, "expired", now)',
        'UploadSession.Status.FAILED, "timeout", now)',
        _CLEANUP,
    ),
    m(
        "expired sessions' files are not counted",
        STALE,
        '    run.add("files_failed", len(expired))\n',
        "",
        _CLEANUP,
    ),
    m(
        "a dry run's session.expired says it expired them",
        STALE,
        "        count=len(expired),\n        dry_run=would,",
        "        count=len(expired),\n        dry_run=False,",
        _CLEANUP,
    ),
    m(
        "the per-session session.expired names the file as the session",
        STALE,
        "session_id=str(session_id),",
        "session_id=str(file_id),",
        _CLEANUP,
    ),
    m(
        "sweep's grace is seconds, not minutes",
        SWEEP,
        "grace = timedelta(minutes=settings.PORTAL_ORPHAN_GRACE_MINUTES)",
        "grace = timedelta(seconds=settings.PORTAL_ORPHAN_GRACE_MINUTES)",
        _CLEANUP,
    ),
    m(
        "sweep's dry run deletes",
        SWEEP,
        "        if untracked and run.dry_run:",
        "        if False:",
        _CLEANUP,
    ),
    m(
        "sweep aborts a live assembly's multipart upload",
        SWEEP,
        "            if upload_id in live:\n                continue\n",
        "",
        _CLEANUP,
    ),
    m(
        "sweep's dry run aborts multipart uploads",
        SWEEP,
        "            if not run.dry_run:\n                storage.backend().abort",
        "            if True:\n                storage.backend().abort",
        _CLEANUP,
    ),
    m(
        "sweep keeps the tus tails of ended sessions",
        SWEEP,
        "tail_key__in=keys, session__status__in=UploadSession.ACTIVE_STATUSES",
        "tail_key__in=keys",
        _CLEANUP,
    ),
    m(
        "sweep aborts multipart uploads after it stopped early",
        SWEEP,
        "    if not run.stopped_early:\n        _abort_dead_assemblies",
        "    if True:\n        _abort_dead_assemblies",
        _CLEANUP,
    ),
    m(
        "a failing listing is swallowed without a failure",
        SWEEP,
        '        run.record_failures({"(listing)":',
        '        dict({"(listing)":',
        _CLEANUP,
    ),
    m(
        "a job closes its own run as abandoned",
        JOBS,
        "JobRun.objects.filter(job=self.run.job).exclude(pk=self.run.pk)",
        "JobRun.objects.filter(job=self.run.job)",
        _CLEANUP,
    ),
    m(
        "a job closes other jobs' running runs",
        JOBS,
        "JobRun.objects.filter(job=self.run.job).exclude(pk=self.run.pk)",
        "JobRun.objects.exclude(pk=self.run.pk)",
        _CLEANUP,
    ),
    m(
        "a run is abandoned after an hour, not a day",
        JOBS,
        "ABANDONED_AFTER = timedelta(hours=24)",
        "ABANDONED_AFTER = timedelta(hours=1)",
        _CLEANUP,
    ),
    m(
        "a crashed job run is recorded ok",
        JOBS,
        "            state.outcome = JobRun.Outcome.FAILED\n",
        "",
        _CLEANUP,
    ),
    m(
        "a crashed job run does not say why",
        JOBS,
        'state.counts = {**state.counts, "error": f"{type(exc).__name__}: {exc}"[:500]}',
        "pass",
        _CLEANUP,
    ),
    m(
        "a negative batch size is taken",
        BASE,
        "        if self.batch_size < 1:",
        "        if self.batch_size < -1:",
        _CLEANUP,
    ),
    m(
        "orphans never page through a session larger than a batch",
        ORPHANS,
        "        if len(rows) == run.batch_size:",
        "        if len(rows) > run.batch_size:",
        _CLEANUP,
    ),
    m(
        "a job run ended by Ctrl-C is recorded ok",
        JOBS,
        "        except BaseException as exc:\n",
        "        except Exception as exc:\n",
        _CLEANUP,
    ),
)
