"""An eighth independent sample for tests/mutants.py: 30 careless slips at locations drawn
at random over the product code, written from portal/ and boot/ only (no test file was
read), none of them the edit of another catalog's entry. Written against main at
d24f335ac48c972079218166eeae697d24a798bb. How drawn: tests.mechanical.pool() (8177
lines), random.Random(20261210), the k-th draw pool[rng.randrange(len(pool))], one
mutant per draw in order, the most plausible slip at the line (or in its statement or
function). Draws used: 1, 2, 4, 5, 7-20, 23-25, 27-29, 31-36. Skipped: 3, 6, 22, 26
(imports), 21 (page_context: a plain call with no plausible slip at the line), 30
(_commit: already has draw 2's mutant).

Measured (issue #31) on main at b601e20, the same way as sample 7 (named tests plus every
test that ran the lines, then the fast suite for survivors; each kill's first failing test
passes without the mutant). Stillborn: draw 27 (``expires_at__gt`` twice in one call does
not compile: every test errors), left out. Equivalent: draw 9 (the filter's loop over
extras scrubs ``record.exception`` again), draw 10 (every schedule is under a day, so
``.seconds`` equals ``total_seconds()``). Killed: 22 by the first stage, 1 by the fast
suite: 23 of 27 = 85 %. Survivors: draw 1 (a replay hashed from its first read only;
pinned after in ``test_api_parts``), draw 14 (the multiprocess files merged after the lock
is released), draw 34 (local storages refusing to overwrite), draw 36 (a second close
handing the buffers on again).
"""

from tests.mutant_catalog import Mutant

MUTANTS = (
    # draw 1, portal/storage/__init__.py:291 (hash_only)
    Mutant(
        "s8: a replayed part is hashed from its first chunk only",
        "portal/storage/__init__.py",
        (
            (
                "    while reader.read(READ_CHUNK_BYTES):\n        pass\n",
                "    reader.read(READ_CHUNK_BYTES)\n",
            ),
        ),
        ("tests/test_api_parts.py", "tests/test_parts.py", "tests/test_pins_parts.py"),
    ),
    # draw 2, portal/services/finalize/assembly.py:150 (_commit)
    Mutant(
        "s8: an assembled session re-reads its file only when it did not complete",
        "portal/services/finalize/assembly.py",
        (
            (
                "    if locked.status == Status.COMPLETE:\n        return IngestFile",
                "    if locked.status != Status.COMPLETE:\n        return IngestFile",
            ),
        ),
        ("tests/test_api_finalize.py", "tests/test_finalize_async.py"),
    ),
    # draw 4, portal/services/cleanup/orphans.py:85 (_release)
    Mutant(
        "s8: orphan cleanup never clears the rows of the batch whose objects it deleted",
        "portal/services/cleanup/orphans.py",
        (
            (
                "    _clear_keys(in_flight, run)\n    return by_key, deleting",
                "    return by_key, deleting",
            ),
        ),
        ("tests/test_cleanup.py", "tests/test_cleanup_command.py"),
    ),
    # draw 5, portal/services/cleanup/base.py:64 (StepRun.__init__)
    Mutant(
        "s8: a cleanup batch size of 1 is refused",
        "portal/services/cleanup/base.py",
        (("        if self.batch_size < 1:", "        if self.batch_size <= 1:"),),
        ("tests/test_cleanup.py", "tests/test_cleanup_command.py"),
    ),
    # draw 7, portal/services/sessions.py:232 (ensure_open)
    Mutant(
        "s8: an expired session is answered with the wrong error code",
        "portal/services/sessions.py",
        (('code="session_expired")', 'code="expired")'),),
        ("tests/test_api_sessions.py", "tests/test_api_parts.py", "tests/test_tus_api.py"),
    ),
    # draw 8, portal/health/executor.py:15 (module constant)
    Mutant(
        "s8: the readiness probe pool has no spare thread",
        "portal/health/executor.py",
        (("PROBE_POOL_THREADS = 4", "PROBE_POOL_THREADS = 3"),),
        ("tests/test_health.py", "tests/test_probe_lanes.py", "tests/test_probes_under_load.py"),
    ),
    # draw 9, portal/observability.py:219 (filter)
    Mutant(
        "s8: a logged exception's message is not scrubbed of secrets",
        "portal/observability.py",
        (('"message": self.text(str(exc)),', '"message": str(exc),'),),
        ("tests/test_logging.py", "tests/test_logging_events.py"),
    ),
    # draw 10, portal/metrics/collector.py:107 (job_families)
    Mutant(
        "s8: a job's expected interval drops whole days",
        "portal/metrics/collector.py",
        (
            (
                "[((c,), s.total_seconds()) for c, s in JOB_SCHEDULES.items()]",
                "[((c,), s.seconds) for c, s in JOB_SCHEDULES.items()]",
            ),
        ),
        ("tests/test_metrics.py", "tests/test_prometheus.py"),
    ),
    # draw 11, portal/management/commands/portal_upload.py:269 (finalize)
    Mutant(
        "s8: the upload command returns a file while the server still assembles it",
        "portal/management/commands/portal_upload.py",
        (
            (
                '        if status == 200:\n            return body["file"]',
                '        if status in (200, 202):\n            return body["file"]',
            ),
        ),
        ("tests/test_upload_client.py", "tests/test_upload_client_busy.py"),
    ),
    # draw 12, portal/checks.py:119 (weak_secret)
    Mutant(
        "s8: a secret of exactly 8 different characters is called too plain",
        "portal/checks.py",
        (("    if len(set(value)) < 8:", "    if len(set(value)) <= 8:"),),
        ("tests/test_settings.py", "tests/test_pins2_ops_checks.py"),
    ),
    # draw 13, portal/services/tus_stream.py:15 (tail_chunks)
    Mutant(
        "s8: a tus tail longer than asked for runs past its size",
        "portal/services/tus_stream.py",
        (("            left -= min(left, len(chunk))", "            left -= len(chunk)"),),
        ("tests/test_tus_api.py", "tests/test_tus_edges.py", "tests/test_tus_portal.py"),
    ),
    # draw 14, portal/metrics/multiproc.py:169 (locked_collector)
    Mutant(
        "s8: the multiprocess metrics are merged after the lock is released",
        "portal/metrics/multiproc.py",
        (
            (
                "                return list(super().collect())",
                "                return super().collect()",
            ),
        ),
        ("tests/test_metrics_multiproc.py", "tests/test_metrics.py"),
    ),
    # draw 15, portal/services/finalize/assembly.py:36 (part_rows)
    Mutant(
        "s8: the parts are assembled in whatever order the database returns them",
        "portal/services/finalize/assembly.py",
        (
            (
                '.order_by("part_number")\n        .values_list(',
                ".values_list(",
            ),
        ),
        ("tests/test_api_finalize.py", "tests/test_finalize_async.py"),
    ),
    # draw 16, portal/services/status/page.py:222 (outbox_section)
    Mutant(
        "s8: the status page lists failed outbox events only when some are pending",
        "portal/services/status/page.py",
        (("(failed_events() if failed else [])", "(failed_events() if pending else [])"),),
        ("tests/test_status_page.py", "tests/test_status_browser.py"),
    ),
    # draw 17, portal/health/checks.py:134 (measure)
    Mutant(
        "s8: a job that never completed is reported healthy",
        "portal/health/checks.py",
        (
            (
                'raise ServiceWarning(f"{self.job} has never completed")',
                "return",
            ),
        ),
        ("tests/test_health.py", "tests/test_pins2_ops_health.py"),
    ),
    # draw 18, portal/services/outbox/dispatch.py:184 (_log_failure)
    Mutant(
        "s8: a retried outbox delivery is not counted as retried",
        "portal/services/outbox/dispatch.py",
        (("    result.retried += 1\n    log_event(", "    log_event("),),
        ("tests/test_outbox.py", "tests/test_logging_events.py", "tests/test_dispatch.py"),
    ),
    # draw 19, portal/storage/sha256state.py:149 (_valid)
    Mutant(
        "s8: a saved sha256 state of zero bytes is rejected",
        "portal/storage/sha256state.py",
        (
            (
                "    if length < 0:\n        return False",
                "    if length <= 0:\n        return False",
            ),
        ),
        ("tests/test_sha256state.py", "tests/test_pins2_storage_sha256.py"),
    ),
    # draw 20, portal/services/part_sql.py:195 (claim_hash)
    Mutant(
        "s8: the hash catch-up claim expects the waiting part already hashed",
        "portal/services/part_sql.py",
        (
            (
                "[timestamp(until), session_pk(pk), first - 1, timestamp(now)]",
                "[timestamp(until), session_pk(pk), first, timestamp(now)]",
            ),
        ),
        ("tests/test_file_hash_catch_up.py", "tests/test_file_hash.py", "tests/test_part_sql.py"),
    ),
    # draw 23, portal/health/lanes.py:87 (enqueue_req)
    Mutant(
        "s8: a connection with no byte yet ties up a worker thread",
        "portal/health/lanes.py",
        (
            (
                "self._wait_for_request(conn)",
                "super().enqueue_req(conn)",
            ),
        ),
        ("tests/test_probe_lanes.py", "tests/test_probes_under_load.py"),
    ),
    # draw 24, portal/services/chunks.py:201 (_receipt)
    Mutant(
        "s8: a part's receipt claims every part completed",
        "portal/services/chunks.py",
        (
            (
                '"completed_parts": session.completed_parts,',
                '"completed_parts": session.total_parts,',
            ),
        ),
        ("tests/test_api_parts.py", "tests/test_parts.py"),
    ),
    # draw 25, portal/services/finalize/assembly.py:78 (_sources_with_room)
    Mutant(
        "s8: finalize does not notice that the last part is missing",
        "portal/services/finalize/assembly.py",
        (("set(range(1, session.total_parts + 1))", "set(range(1, session.total_parts))"),),
        ("tests/test_api_finalize.py", "tests/test_finalize_async.py"),
    ),
    # draw 27, portal/services/finalize/request.py:135 (keep_for_retries)
    Mutant(
        "s8: a finalizing session's expiry is never extended for retries (stillborn)",
        "portal/services/finalize/request.py",
        (
            (
                "                expires_at__lt=expires_at,",
                "                expires_at__gt=expires_at,",
            ),
        ),
        (
            "tests/test_api_finalize.py",
            "tests/test_finalize_async.py",
            "tests/test_finalize_lease.py",
        ),
    ),
    # draw 28, boot/settings.py:171 (post_setup)
    Mutant(
        "s8: invalid settings are collected but never raised",
        "boot/settings.py",
        (
            (
                "        super().post_setup()\n        v.raise_problems()",
                "        super().post_setup()",
            ),
        ),
        ("tests/test_settings.py", "tests/test_pins_ops_boot.py"),
    ),
    # draw 29, portal/services/cleanup/stale.py:62 (_log_expired)
    Mutant(
        "s8: the expired-session log line names the session as its file",
        "portal/services/cleanup/stale.py",
        (
            (
                "                file_id=str(file_id),\n                dry_run=would,",
                "                file_id=str(session_id),\n                dry_run=would,",
            ),
        ),
        ("tests/test_cleanup.py", "tests/test_logging_events.py"),
    ),
    # draw 31, portal/storage/local.py:105 (delete_local)
    Mutant(
        "s8: local deletion unlinks keys it never checked (a key may leave the storage)",
        "portal/storage/local.py",
        (("    for key in keys:\n        check_key(key)\n    directories", "    directories"),),
        ("tests/test_storage.py", "tests/test_pins2_storage_local.py"),
    ),
    # draw 32, portal/views/tus.py:115 (_create)
    Mutant(
        "s8: a tus creation with a body skips the content-type check",
        "portal/views/tus.py",
        (
            (
                "    if length:\n        _check_content_type(request)",
                "    if not length:\n        _check_content_type(request)",
            ),
        ),
        ("tests/test_tus_api.py", "tests/test_tus_edges.py"),
    ),
    # draw 33, portal/services/part_sql.py:117 (insert_part)
    Mutant(
        "s8: a stored part's offset in its temp object is recorded as 0",
        "portal/services/part_sql.py",
        (("        P.temp_offset: stored.offset,", "        P.temp_offset: 0,"),),
        ("tests/test_part_sql.py", "tests/test_in_place.py", "tests/test_large_parts_on_disk.py"),
    ),
    # draw 34, boot/settings.py:217 (_local_storage)
    Mutant(
        "s8: the local storages refuse to overwrite an object",
        "boot/settings.py",
        (
            (
                '                "allow_overwrite": True,',
                '                "allow_overwrite": False,',
            ),
        ),
        ("tests/test_storage.py", "tests/test_settings.py"),
    ),
    # draw 35, portal/management/commands/portal_create_token.py:26 (add_arguments)
    Mutant(
        "s8: tokens are created for monitoring unless --monitoring is given",
        "portal/management/commands/portal_create_token.py",
        (
            (
                '            action="store_true",\n            help="a token that reads',
                '            action="store_false",\n            help="a token that reads',
            ),
        ),
        ("tests/test_commands.py", "tests/test_tokens.py"),
    ),
    # draw 36, portal/storage/streams.py:132 (close)
    Mutant(
        "s8: a closed reader keeps the buffers it handed on to the next reader",
        "portal/storage/streams.py",
        (
            (
                "            _SPARE.buffers = self._buffers\n            self._buffers = None",
                "            _SPARE.buffers = self._buffers",
            ),
        ),
        ("tests/test_request_body.py", "tests/test_upload_gunicorn.py"),
    ),
)
