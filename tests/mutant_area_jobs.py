"""Area catalog ``jobs`` (issue #31): the cron jobs (cleanup, dispatch), the outbox, the
HTTP client, the database gate and the management commands, portal_upload included."""

from tests.mutant_catalog import Mutant

P = "tests/test_pins_jobs.py"
_CLEANUP = (P, "tests/test_cleanup.py", "tests/test_cleanup_command.py")
_OUTBOX = (P, "tests/test_outbox.py", "tests/test_outbox_claims.py", "tests/test_dispatch.py")
_HTTP = (P, "tests/test_httpclient.py", "tests/test_outbox.py", "tests/test_dispatch.py")
_UPLOAD = (P, "tests/test_upload_client.py", "tests/test_upload_client_busy.py")
_CMD = (P, "tests/test_commands.py", "tests/test_cleanup_command.py", "tests/test_dispatch.py")

CLEANUP = "portal/services/cleanup/__init__.py"
BASE = "portal/services/cleanup/base.py"
ORPHANS = "portal/services/cleanup/orphans.py"
PRUNE = "portal/services/cleanup/prune.py"
STALE = "portal/services/cleanup/stale.py"
SWEEP = "portal/services/cleanup/sweep.py"
OUTBOX = "portal/services/outbox/__init__.py"
CLIENT = "portal/services/outbox/client.py"
DISPATCH = "portal/services/outbox/dispatch.py"
JOBS = "portal/services/jobs.py"
HTTP = "portal/httpclient.py"
GATE = "portal/dbgate.py"
MBASE = "portal/management/base.py"
UPLOAD = "portal/management/commands/portal_upload.py"
CMD_CLEANUP = "portal/management/commands/portal_cleanup.py"
CMD_DISPATCH = "portal/management/commands/portal_dispatch.py"
CMD_DRAIN = "portal/management/commands/portal_drain.py"
CMD_TOKEN = "portal/management/commands/portal_create_token.py"


def m(name, path, old, new, tests):
    return Mutant("jobs: " + name, path, ((old, new),), tests)


MUTANTS = (
    # --- the cleanup run (portal/services/cleanup/__init__.py)
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
    # --- batching (portal/services/cleanup/base.py)
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
    # --- orphans
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
        "orphans delete the temp objects of open sessions",
        ORPHANS,
        "if session_id in terminal)",
        ")",
        _CLEANUP,
    ),
    # --- prune
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
    # Not here: dropping status=delivered from prune's event filter is equivalent, since only a
    # delivery sets delivered_at.
    m(
        "prune leaves a late-failed finalize's final object",
        PRUNE,
        "storage_key or storage.new_final_key(file_id, now=created_at)",
        "storage_key",
        _CLEANUP,
    ),
    # Not here: counting the final keys asked for instead of those deleted is equivalent, since
    # any failed deletion ends the batch before it counts.
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
    # --- stale
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
    # --- sweep
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
    # --- the outbox payload and client
    m(
        "file.uploaded's occurred_at is not ISO 8601",
        OUTBOX,
        '"occurred_at": occurred_at.isoformat(),',
        '"occurred_at": str(occurred_at),',
        _OUTBOX,
    ),
    m(
        "file.uploaded's size is the session's chunk size",
        OUTBOX,
        '"size_bytes": file.size_bytes,',
        '"size_bytes": file.size_bytes and 0,',
        _OUTBOX,
    ),
    m(
        "a claim's lease is one delivery deadline, not two",
        CLIENT,
        "return 2 * (self.timeout + LEASE_MARGIN_SECONDS)",
        "return self.timeout + 2 * LEASE_MARGIN_SECONDS",
        _OUTBOX,
    ),
    m(
        "the endpoint's query string is dropped",
        CLIENT,
        '(f"?{parts.query}" if parts.query else "")',
        '""',
        _OUTBOX,
    ),
    m(
        "a redirect counts as delivered",
        CLIENT,
        "ok = 200 <= answer.status < 300",
        "ok = 200 <= answer.status < 400",
        _OUTBOX,
    ),
    m(
        "a failed delivery's last_error has no reason phrase",
        CLIENT,
        'detail = "" if ok else answer.reason[:60]',
        'detail = ""',
        _OUTBOX,
    ),
    m(
        "the signature lacks its sha256= prefix",
        CLIENT,
        'return "sha256=" + hmac.new',
        "return hmac.new",
        _OUTBOX,
    ),
    m(
        "X-Portal-Attempt counts from 0",
        DISPATCH,
        "            attempt=event.attempts + 1,\n            while_waiting",
        "            attempt=event.attempts,\n            while_waiting",
        _OUTBOX,
    ),
    # --- dispatch
    m(
        "an event due exactly now waits",
        DISPATCH,
        "filter(status=status, next_attempt_at__lte=now)",
        "filter(status=status, next_attempt_at__lt=now)",
        _OUTBOX,
    ),
    m(
        "a delivery does not count as an attempt",
        DISPATCH,
        '            attempts=F("attempts") + 1,\n',
        "",
        _OUTBOX,
    ),
    m(
        "a delivered event keeps its last error",
        DISPATCH,
        '            last_error="",\n',
        "",
        _OUTBOX,
    ),
    m(
        "the backoff starts one step too far",
        DISPATCH,
        "retry_delay(failure.event.attempts, config)",
        "retry_delay(attempts, config)",
        _OUTBOX,
    ),
    m(
        "a failure recorded over a lost lease counts as retried",
        DISPATCH,
        "return (state if updated else None), next_at",
        "return state, next_at",
        _OUTBOX,
    ),
    m(
        "giving up logs a warning, not an error",
        DISPATCH,
        "            level=logging.ERROR,\n            max_attempts",
        "            level=logging.WARNING,\n            max_attempts",
        _OUTBOX,
    ),
    m(
        "a released event stays sending",
        DISPATCH,
        "status=OutboxEvent.Status.PENDING, next_attempt_at=timezone.now()",
        "status=OutboxEvent.Status.SENDING, next_attempt_at=timezone.now()",
        _OUTBOX,
    ),
    m(
        "a requeue keeps the spent attempts",
        DISPATCH,
        "status=OutboxEvent.Status.PENDING, attempts=0, next_attempt_at=now",
        "status=OutboxEvent.Status.PENDING, next_attempt_at=now",
        _OUTBOX,
    ),
    m(
        "a requeue of no ids requeues every failed event",
        DISPATCH,
        "    if ids is not None:\n",
        "    if ids:\n",
        _OUTBOX,
    ),
    m(
        "a run that gave up is recorded ok",
        DISPATCH,
        "run.outcome = JobRun.Outcome.PARTIAL if result.gave_up else JobRun.Outcome.OK",
        "run.outcome = JobRun.Outcome.OK",
        _OUTBOX,
    ),
    m(
        "the backlog leaves out events being sent",
        DISPATCH,
        "status__in=(OutboxEvent.Status.PENDING, OutboxEvent.Status.SENDING)",
        "status__in=(OutboxEvent.Status.PENDING,)",
        _OUTBOX,
    ),
    m(
        "a limited run claims a whole batch",
        DISPATCH,
        "size = batch_size if limit is None else min(batch_size, limit - result.attempted)",
        "size = batch_size",
        _OUTBOX,
    ),
    m(
        "a batch stops only when the lease is gone, not a deadline before",
        DISPATCH,
        "if claim.expires_monotonic - now < config.timeout + LEASE_MARGIN_SECONDS:",
        "if claim.expires_monotonic - now < 0:",
        _OUTBOX,
    ),
    m(
        "the event after the last sent one is not handed back",
        DISPATCH,
        "release(claim, claim.events[sent:])",
        "release(claim, claim.events[sent + 1 :])",
        _OUTBOX,
    ),
    # --- job runs (portal/services/jobs.py)
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
        _CMD,
    ),
    m(
        "a crashed job run does not say why",
        JOBS,
        'state.counts = {**state.counts, "error": f"{type(exc).__name__}: {exc}"[:500]}',
        "pass",
        _CMD,
    ),
    # --- the HTTP client
    m(
        "a URL with a space passes",
        HTTP,
        "ord(char) < 33 or ord(char) > 126",
        "ord(char) < 32 or ord(char) > 126",
        _HTTP,
    ),
    m(
        "a URL with port 0 passes",
        HTTP,
        "    if port == 0:\n",
        "    if port == -1:\n",
        _HTTP,
    ),
    m(
        "backoff has full jitter, not equal jitter",
        HTTP,
        "return delay / 2 + rand() * delay / 2",
        "return rand() * delay",
        _HTTP,
    ),
    m(
        "backoff is not capped",
        HTTP,
        "delay = min(cap, base * (2**exponent))",
        "delay = base * (2**exponent)",
        _HTTP,
    ),
    m(
        "a connect timeout is reported as no answer",
        HTTP,
        '        if phase == "connect":\n',
        '        if phase == "connecting":\n',
        _HTTP,
    ),
    m(
        "a server answering early before the body is read as a failure",
        HTTP,
        "            except OSError:\n                pass  # the server may",
        "            except ZeroDivisionError:\n                pass  # the server may",
        _HTTP + _UPLOAD,
    ),
    m(
        "a streamed body's blocks are sent without the deadline",
        HTTP,
        "            self.sock.settimeout(self.time_left())\n            super().send(block)",
        "            super().send(block)",
        _HTTP + _UPLOAD,
    ),
    m(
        "a request body file is left open",
        HTTP,
        '            if hasattr(payload, "close"):\n                payload.close()',
        "            pass",
        _HTTP + _UPLOAD,
    ),
    # --- the database gate
    m(
        "the database gate logs every failure, not the first",
        GATE,
        "        if was_up:\n            log_event(",
        "        if True:\n            log_event(",
        ("tests/test_dbgate.py", P),
    ),
    m(
        "a CORS preflight is held by the database gate",
        GATE,
        'if request.method == "OPTIONS":',
        'if request.method == "HEAD":',
        ("tests/test_dbgate.py", P),
    ),
    m(
        "a connect error that is no database error is answered 503",
        GATE,
        "                return database_unavailable()\n            raise",
        "                return database_unavailable()\n            return database_unavailable()",
        ("tests/test_dbgate.py", P),
    ),
    m(
        "a negative batch size is taken",
        BASE,
        "        if self.batch_size < 1:",
        "        if self.batch_size < -1:",
        _CLEANUP,
    ),
    # --- command base (portal/management/base.py)
    m(
        "a whole-number option accepts its lower bound minus one",
        MBASE,
        "        if not lower <= value <= upper:",
        "        if not lower - 1 <= value <= upper:",
        _CMD,
    ),
    m(
        "a whole-number option refuses its upper bound",
        MBASE,
        "        if not lower <= value <= upper:",
        "        if not lower <= value < upper:",
        _CMD,
    ),
    m(
        "--max-seconds 0 is accepted",
        MBASE,
        "        if not 0 < value <= upper:",
        "        if not 0 <= value <= upper:",
        _CMD,
    ),
    m(
        "non-ASCII digits are read as numbers",
        MBASE,
        "return convert(text.strip()) if text.isascii() else None",
        "return convert(text.strip())",
        _CMD,
    ),
    m(
        "with JSON logs a usage error exits 1",
        MBASE,
        "            sys.exit(exc.returncode)",
        "            sys.exit(exitcodes.PARTIAL)",
        _CMD,
    ),
    m(
        "a configuration problem exits 1",
        MBASE,
        '"Configuration error: " + "; ".join(problems), returncode=exitcodes.USAGE',
        '"Configuration error: " + "; ".join(problems), returncode=exitcodes.PARTIAL',
        _CMD,
    ),
    m(
        "--json prints nothing when the text summary exists",
        MBASE,
        '        if options["json"]:\n',
        '        if options["json"] and False:\n',
        _CMD,
    ),
    # --- the commands
    m(
        "portal_cleanup shows progress at verbosity 1",
        CMD_CLEANUP,
        'if options["verbosity"] < 2 and not sys.stderr.isatty():',
        'if options["verbosity"] < 1 and not sys.stderr.isatty():',
        _CMD,
    ),
    m(
        "portal_dispatch's text leaves out the requeued events",
        CMD_DISPATCH,
        'if summary["requeued"] else ""',
        'if False else ""',
        _CMD,
    ),
    m(
        "portal_dispatch's configuration error exits 1",
        CMD_DISPATCH,
        'raise CommandError(f"Configuration error: {exc}", returncode=exitcodes.USAGE)',
        'raise CommandError(f"Configuration error: {exc}", returncode=exitcodes.PARTIAL)',
        _CMD,
    ),
    m(
        "portal_drain status says serving while draining",
        CMD_DRAIN,
        "elif (path := drain.drain_file()).exists():",
        "elif (path := drain.drain_file()).exists() and False:",
        ("tests/test_drain.py", P),
    ),
    m(
        "portal_create_token --monitoring makes an upload token",
        CMD_TOKEN,
        "ApiToken.Purpose.MONITORING if monitoring else ApiToken.Purpose.UPLOAD",
        "ApiToken.Purpose.UPLOAD",
        ("tests/test_tokens.py", P),
    ),
    # --- portal_upload
    m(
        "portal_upload gives up one try early",
        UPLOAD,
        "                if attempt == self.retries:",
        "                if attempt == self.retries - 1:",
        _UPLOAD,
    ),
    m(
        "portal_upload does not retry a 503",
        UPLOAD,
        "RETRYABLE_STATUS = {408, 429, 500, 502, 503, 504}",
        "RETRYABLE_STATUS = {408, 429, 500, 502, 504}",
        _UPLOAD,
    ),
    m(
        "portal_upload retries a 4xx",
        UPLOAD,
        "        if answer.status in RETRYABLE_STATUS:",
        "        if answer.status >= 400:",
        _UPLOAD,
    ),
    m(
        "portal_upload takes a non-JSON 200 for the portal's answer",
        UPLOAD,
        "            if answer.status < 300:  # not the portal answering",
        "            if answer.status < 200:  # not the portal answering",
        _UPLOAD,
    ),
    m(
        "portal_upload gives a large part no more time than a small request",
        UPLOAD,
        "budget = self.timeout + (length or 0) / SLOWEST_SEND_RATE",
        "budget = self.timeout",
        _UPLOAD,
    ),
    m(
        "portal_upload doubles the API prefix of a URL that has it",
        UPLOAD,
        "self.prefix = prefix if prefix.endswith(API_PREFIX) else prefix + API_PREFIX",
        "self.prefix = prefix + API_PREFIX",
        _UPLOAD,
    ),
    m(
        "portal_upload resends the parts the server has",
        UPLOAD,
        "missing = [n for n in range(1, total + 1) if n not in received]",
        "missing = list(range(1, total + 1))",
        _UPLOAD,
    ),
    m(
        "portal_upload never sends the last part",
        UPLOAD,
        "missing = [n for n in range(1, total + 1) if n not in received]",
        "missing = [n for n in range(1, total) if n not in received]",
        _UPLOAD,
    ),
    m(
        "portal_upload takes a 409 part for sent",
        UPLOAD,
        "        if status == 409:\n",
        "        if status == 499:\n",
        _UPLOAD,
    ),
    m(
        "portal_upload waits on a session that failed during assembly",
        UPLOAD,
        '            if body["status"] != "finalizing":',
        '            if body["status"] == "failed_never":',
        _UPLOAD,
    ),
    m(
        "portal_upload accepts a stored file of another size",
        UPLOAD,
        'if file["sha256"] != local or file["size_bytes"] != uploader.size:',
        'if file["sha256"] != local:',
        _UPLOAD,
    ),
    m(
        "portal_upload accepts an empty file",
        UPLOAD,
        "if not os.path.isfile(path) or os.path.getsize(path) == 0:",
        "if not os.path.isfile(path):",
        _UPLOAD,
    ),
    m(
        "portal_upload sends a part's bytes from the wrong offset",
        UPLOAD,
        "        self._file.seek(offset)\n",
        "        self._file.seek(offset + 1 if offset else 0)\n",
        _UPLOAD,
    ),
    m(
        "portal_upload retries a part still in progress only as a failure",
        UPLOAD,
        'RETRYABLE_CODES = {"part_in_progress"}',
        'RETRYABLE_CODES = {"part_busy"}',
        _UPLOAD,
    ),
    # --- second sweep: more functions of the area
    m(
        "an empty token file falls through to 'no API token'",
        "portal/management/token_source.py",
        "    if not token.strip():\n",
        "    if False:\n",
        (P, "tests/test_upload_token.py"),
    ),
    m(
        "--token on the command line is taken without a warning",
        "portal/management/token_source.py",
        "    if given is not None:\n        sys.stderr.write(",
        "    if given is not None:\n        (",
        (P, "tests/test_upload_token.py"),
    ),
    m(
        "an unreadable token file exits 1",
        "portal/management/token_source.py",
        '            f"--token-file {path}: cannot read it ({exc})", returncode=exitcodes.USAGE',
        '            f"--token-file {path}: cannot read it ({exc})", returncode=exitcodes.PARTIAL',
        (P, "tests/test_upload_token.py"),
    ),
    m(
        "portal_create_token for an unknown user exits 1",
        CMD_TOKEN,
        'pass --create-user to create it", returncode=exitcodes.USAGE',
        'pass --create-user to create it", returncode=exitcodes.PARTIAL',
        (P, "tests/test_tokens.py"),
    ),
    m(
        "outbox.dispatched logs the attempts before this one",
        DISPATCH,
        "        attempt=event.attempts + 1,\n        duration_ms=outcome.duration_ms,\n    )",
        "        attempt=event.attempts,\n        duration_ms=outcome.duration_ms,\n    )",
        _OUTBOX,
    ),
    m(
        "orphans never page through a session larger than a batch",
        ORPHANS,
        "        if len(rows) == run.batch_size:",
        "        if len(rows) > run.batch_size:",
        _CLEANUP,
    ),
    m(
        "a TLS handshake timeout is reported as no answer",
        HTTP,
        '        if phase == "tls":',
        '        if phase == "handshake":',
        _HTTP,
    ),
    m(
        "backoff's exponent is not capped",
        HTTP,
        "exponent = min(attempts_before, 62)",
        "exponent = attempts_before",
        _HTTP,
    ),
    m(
        "portal_cleanup --only is ignored",
        CMD_CLEANUP,
        'steps=tuple(options["only"] or cleanup.STEPS),',
        "steps=cleanup.STEPS,",
        _CMD,
    ),
    m(
        "portal_upload's idempotency key ignores the mtime",
        UPLOAD,
        'identity = f"{os.path.realpath(path)}\\0{stat.st_size}\\0{stat.st_mtime_ns}"',
        'identity = f"{os.path.realpath(path)}\\0{stat.st_size}"',
        _UPLOAD,
    ),
    m(
        "portal_upload calls a found session new",
        UPLOAD,
        "{'new' if status == 201 else 'existing'}",
        "{'new' if status in (200, 201) else 'existing'}",
        _UPLOAD,
    ),
    m(
        "portal_upload refuses a session that is already complete",
        UPLOAD,
        '        elif status == "complete":',
        '        elif status == "completed":',
        _UPLOAD,
    ),
    m(
        "a job run ended by Ctrl-C is recorded ok",
        JOBS,
        "        except BaseException as exc:\n",
        "        except Exception as exc:\n",
        _CMD,
    ),
    m(
        "an https endpoint without a port is called on port 80",
        HTTP,
        "default_port = http.client.HTTP_PORT if self._tls is None else http.client.HTTPS_PORT",
        "default_port = http.client.HTTP_PORT",
        _HTTP,
    ),
    m(
        "a read timeout does not name the peer",
        HTTP,
        'return f"{peer} did not answer within {seconds:g} s"',
        'return f"the server did not answer within {seconds:g} s"',
        _HTTP,
    ),
)
