"""A thirteenth independent sample for tests/mutants.py: 30 careless slips at random lines,
written from portal/ and boot/ only (no test file read), none another catalog's edit nor
one of samples 11 and 12 (compared as mutated texts), against main at 180c247. Drawn with
seed 20261215 (pool 8178 lines). Draws used: 1, 3-22, 24-32. Skipped: 2 (an import), 23
(a command's help text). The drawn line allowed no slip (a closing parenthesis, a ``def``)
at 6, 16, 19, 20, 21, 25, 27: the slip is in its statement or function. Draws 3, 5, 10,
11, 14, 24, 28, 32 carry a later slip of their function (the first was another catalog's).

Measured (issue #31) at db44dbd (after weak-pin rounds 6 and 7) as sample 11, the
coverage record older than both rounds. Equivalent: draw 18 (the logger tree's text
already ends in a newline, so no second one is written). Killed 22: draw 16 only by round
7's settings pins. Survivors, all pinned after: 1 (a crashed merge's staging file;
test_pins3_ops_multiproc), 5 (a finalizing session's file swept; test_in_place), 8 (the
oldest run reported; test_pins7_sql_figures), 13 (blanks before the algorithm;
test_pins6_tus_headers), 15 (the file mode; test_pins6_store_local), 22 (a relative data
directory; test_pins7_set_classes), 32 (Uppy's type over tus's filetype; test_pins_tus).
22 of 29 = 76 %.
"""

from tests.mutant_catalog import Mutant

MUTANTS = (
    # draw 1, portal/metrics/multiproc.py:112 (merge_dead_files)
    Mutant(
        "s13: merging dead files appends to a staging file left by a crash",
        "portal/metrics/multiproc.py",
        (("os.unlink(staging)  # left by a crash", "pass  # left by a crash"),),
        ("tests/test_metrics_multiproc.py", "tests/test_pins3_ops_multiproc.py"),
    ),
    # draw 3, portal/services/cleanup/orphans.py:95 (_release)
    Mutant(
        "s13: parts sharing an assembly file: only the last one's temp key is cleared",
        "portal/services/cleanup/orphans.py",
        (("by_key.setdefault(key, []).append(pk)", "by_key[key] = [pk]"),),
        ("tests/test_cleanup.py", "tests/test_cleanup_command.py"),
    ),
    # draw 4, portal/management/commands/portal_upload.py:112 (_once)
    Mutant(
        "s13: portal_upload retries a TLS failure as a transient error",
        "portal/management/commands/portal_upload.py",
        (
            (
                'raise UploadFailed(f"{method} {url}: {exc}") from None',
                'raise Transient(f"{method} {url}: {exc}") from None',
            ),
        ),
        ("tests/test_upload_client.py", "tests/test_httpclient.py"),
    ),
    # draw 5, portal/services/cleanup/sweep.py:77 (untracked_keys)
    Mutant(
        "s13: the sweep deletes the assembly file of a finalizing session",
        "portal/services/cleanup/sweep.py",
        (
            (
                '            status__in=UploadSession.ACTIVE_STATUSES,\n        ).values_list("pk"',
                '            status__in=UploadSession.OPEN_STATUSES,\n        ).values_list("pk"',
            ),
        ),
        ("tests/test_cleanup.py", "tests/test_cleanup_race.py"),
    ),
    # draw 6, portal/services/filehash.py:55 (catch_up)
    Mutant(
        "s13: a failed hash catch-up is logged without its session id",
        "portal/services/filehash.py",
        (
            (
                "            exc_info=True,\n"
                '            extra={"session_id": str(session_pk)},\n'
                "        )\n\n\ndef _catch_up",
                "            exc_info=True,\n        )\n\n\ndef _catch_up",
            ),
        ),
        ("tests/test_file_hash_catch_up.py", "tests/test_logging_events.py"),
    ),
    # draw 7, portal/services/outbox/dispatch.py:213 (run_dispatch)
    Mutant(
        "s13: every dispatch run requeues failed events, without --retry-failed",
        "portal/services/outbox/dispatch.py",
        (
            (
                "requeued = requeue_failed() if retry_failed else 0",
                "requeued = requeue_failed()",
            ),
        ),
        ("tests/test_dispatch.py", "tests/test_outbox.py"),
    ),
    # draw 8, portal/metrics/figures.py:76 (_latest_run)
    Mutant(
        "s13: the metrics report the oldest job run, not the latest",
        "portal/metrics/figures.py",
        (
            (
                "        JobRun.objects.filter(job=command, outcome=outcome)\n"
                '        .order_by("-started_at")',
                "        JobRun.objects.filter(job=command, outcome=outcome)\n"
                '        .order_by("started_at")',
            ),
        ),
        ("tests/test_metrics.py", "tests/test_prometheus.py"),
    ),
    # draw 9, portal/services/filehash.py:149 (_release)
    Mutant(
        "s13: letting go of the hash claim matches no claim, so it is kept until it runs out",
        "portal/services/filehash.py",
        (
            (
                "        part_sql.release_hash(session_pk, claim)",
                "        part_sql.release_hash(session_pk, None)",
            ),
        ),
        ("tests/test_file_hash_catch_up.py", "tests/test_file_hash.py"),
    ),
    # draw 10, portal/services/outbox/dispatch.py:201 (requeue_failed)
    Mutant(
        "s13: requeueing failed events also requeues pending and delivered ones",
        "portal/services/outbox/dispatch.py",
        (
            (
                "failed = OutboxEvent.objects.filter(status=OutboxEvent.Status.FAILED)",
                "failed = OutboxEvent.objects.all()",
            ),
        ),
        ("tests/test_admin.py", "tests/test_dispatch.py"),
    ),
    # draw 11, portal/storage/s3_backend.py:159 (read)
    Mutant(
        "s13: an S3 read streams in the client's default chunks, not the asked size",
        "portal/storage/s3_backend.py",
        (("yield from body.iter_chunks(chunk_size)", "yield from body.iter_chunks()"),),
        ("tests/test_storage.py", "tests/test_pins6_store_s3.py"),
    ),
    # draw 12, portal/health/checks.py:179 (name)
    Mutant(
        "s13: every disk health check is named plain 'disk', whatever its volume",
        "portal/health/checks.py",
        (('return f"disk:{self.alias}"', 'return "disk"'),),
        ("tests/test_health.py", "tests/test_health_server.py"),
    ),
    # draw 13, portal/services/tus.py:102 (parse_checksum)
    Mutant(
        "s13: an Upload-Checksum header with surrounding blanks is refused",
        "portal/services/tus.py",
        (
            (
                'algorithm, _, encoded = header.strip().partition(" ")',
                'algorithm, _, encoded = header.partition(" ")',
            ),
        ),
        ("tests/test_tus_edges.py", "tests/test_pins6_tus_headers.py"),
    ),
    # draw 14, portal/management/base.py:57 (_execute)
    Mutant(
        "s13: a CommandError's log line names the partial exit code, not its own",
        "portal/management/base.py",
        (
            (
                'logger.error("%s", exc, extra={"exit_code": exc.returncode})',
                'logger.error("%s", exc, extra={"exit_code": exitcodes.PARTIAL})',
            ),
        ),
        ("tests/test_commands.py", "tests/test_pins6_jobs_commands.py"),
    ),
    # draw 15, portal/storage/local.py:80 (created_file)
    Mutant(
        "s13: a created file gets its mode only when a directory mode is set",
        "portal/storage/local.py",
        (
            (
                "if storage.file_permissions_mode is not None:",
                "if storage.directory_permissions_mode is not None:",
            ),
        ),
        ("tests/test_pins6_store_local.py", "tests/test_storage.py"),
    ),
    # draw 16, boot/settings.py:243 (_s3_storage)
    Mutant(
        "s13: the S3 client's connect timeout takes the read timeout's value",
        "boot/settings.py",
        (
            (
                "connect_timeout=self.AWS_S3_CONNECT_TIMEOUT_SECONDS,",
                "connect_timeout=self.AWS_S3_READ_TIMEOUT_SECONDS,",
            ),
        ),
        ("tests/test_settings.py", "tests/test_storage_s3_client.py"),
    ),
    # draw 17, portal/services/finalize/assembly.py:99 (_build)
    Mutant(
        "s13: the finalize lease is not renewed while the parts are assembled",
        "portal/services/finalize/assembly.py",
        (("            progress=lease.progress_recorder(session.pk),\n", ""),),
        ("tests/test_finalize_lease.py", "tests/test_pins6_jobs_lease.py"),
    ),
    # draw 18, portal/management/commands/portal_logging_tree.py:27 (handle)
    Mutant(
        "s13: portal_logging_tree prints an extra blank line after the tree",
        "portal/management/commands/portal_logging_tree.py",
        (
            (
                'self.stdout.write(build_description(), ending="")',
                "self.stdout.write(build_description())",
            ),
        ),
        ("tests/test_logging.py", "tests/test_commands.py"),
    ),
    # draw 19, portal/auth.py:45 (_token_sql)
    Mutant(
        "s13: a token of a deactivated user still authenticates",
        "portal/auth.py",
        (("AND u.{u.is_active} = %s", "AND t.{t.is_active} = %s"),),
        ("tests/test_tokens.py", "tests/test_pins6_parts_tokens.py"),
    ),
    # draw 20, portal/services/finalize/__init__.py:41 (run_finalize_job)
    Mutant(
        "s13: the finalize job is partial when a session failed, not when one erred",
        "portal/services/finalize/__init__.py",
        (
            (
                'run.outcome = JobRun.Outcome.PARTIAL if counts["errors"] else',
                'run.outcome = JobRun.Outcome.PARTIAL if counts["failed"] else',
            ),
        ),
        ("tests/test_finalize_async.py", "tests/test_pins6_jobs_finalize.py"),
    ),
    # draw 21, portal/management/commands/portal_upload.py:245 (send_part)
    Mutant(
        "s13: a part refused with 409 fails without the --idempotency-key advice",
        "portal/management/commands/portal_upload.py",
        (
            (
                "            length=length,\n            ok=(200, 201, 409),",
                "            length=length,\n            ok=(200, 201),",
            ),
        ),
        ("tests/test_upload_client.py", "tests/test_pins4_jobs_upload.py"),
    ),
    # draw 22, boot/settings.py:52 (PORTAL_DATA_DIR)
    Mutant(
        "s13: the default data directory is relative to the working directory",
        "boot/settings.py",
        (
            (
                'PORTAL_DATA_DIR = v.NamedValue(str(BASE_DIR / "var"))',
                'PORTAL_DATA_DIR = v.NamedValue("var")',
            ),
        ),
        ("tests/test_settings.py", "tests/test_pins6_ops_config.py"),
    ),
    # draw 24, portal/services/status/page.py:180 (disk_section)
    Mutant(
        "s13: the status page warns at exactly the warning level of free space",
        "portal/services/status/page.py",
        (("    elif warn and free < warn:", "    elif warn and free <= warn:"),),
        ("tests/test_status_page.py", "tests/test_pins6_ops_status.py"),
    ),
    # draw 25, portal/services/finalize/assembly.py:125 (fail)
    Mutant(
        "s13: a failing finalize leaves the finalizing session unfailed",
        "portal/services/finalize/assembly.py",
        (
            (
                "Status.FAILED, reason, among=UploadSession.ACTIVE_STATUSES",
                "Status.FAILED, reason",
            ),
        ),
        ("tests/test_api_finalize.py", "tests/test_finalize_async.py"),
    ),
    # draw 26, portal/services/tus.py:196 (contiguous_parts)
    Mutant(
        "s13: the contiguous-parts count is off by one after a gap",
        "portal/services/tus.py",
        (("if number != done + 1),", "if number != done),"),),
        ("tests/test_tus_api.py", "tests/test_pins6_tus_offsets.py"),
    ),
    # draw 27, portal/checks.py:124 (check_secrets)
    Mutant(
        "s13: check --deploy accepts a SECRET_KEY of 32 to 49 characters",
        "portal/checks.py",
        (
            (
                "weak_secret(settings.SECRET_KEY, MIN_SECRET_KEY_CHARS)",
                "weak_secret(settings.SECRET_KEY, MIN_RUNNER_SECRET_CHARS)",
            ),
        ),
        ("tests/test_settings.py", "tests/test_pins6_ops_checks.py"),
    ),
    # draw 28, portal/services/part_sql.py:117 (insert_part)
    Mutant(
        "s13: a recorded part forgets its MD5 (S3 copies can no longer skip reading it)",
        "portal/services/part_sql.py",
        (("        P.md5: stored.md5,\n", ""),),
        ("tests/test_part_sql.py", "tests/test_in_place.py"),
    ),
    # draw 29, portal/services/filehash.py:103 (_next_run)
    Mutant(
        "s13: the hash catch-up numbers waiting parts from the last hashed one, not the next",
        "portal/services/filehash.py",
        (
            (
                "enumerate(parts, start=session.hashed_parts + 1)",
                "enumerate(parts, start=session.hashed_parts)",
            ),
        ),
        ("tests/test_file_hash_catch_up.py", "tests/test_file_hash.py"),
    ),
    # draw 30, portal/services/guards.py:88 (ensure_room)
    Mutant(
        "s13: the room check ignores the size being written",
        "portal/services/guards.py",
        (
            (
                "if free is not None and free - size_bytes < reserve:",
                "if free is not None and free < reserve:",
            ),
        ),
        ("tests/test_guards.py", "tests/test_full_volume.py"),
    ),
    # draw 31, portal/services/tus_stream.py:57 (_readinto)
    Mutant(
        "s13: a bounded body read may run past the bytes it wants",
        "portal/services/tus_stream.py",
        (
            (
                "got = self._body.readinto(view[: self._want - self.taken])",
                "got = self._body.readinto(view[: self._want])",
            ),
        ),
        ("tests/test_request_body.py", "tests/test_pins6_tus_patch.py"),
    ),
    # draw 32, portal/services/tus.py:28 (FILETYPE_KEYS)
    Mutant(
        "s13: tus metadata 'type' wins over 'filetype' when both are sent",
        "portal/services/tus.py",
        (('FILETYPE_KEYS = ("filetype", "type")', 'FILETYPE_KEYS = ("type", "filetype")'),),
        ("tests/test_tus_api.py", "tests/test_tus_clients.py"),
    ),
)
