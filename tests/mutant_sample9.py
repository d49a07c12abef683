"""A ninth independent sample for tests/mutants.py: 30 careless slips at locations drawn at
random over the product code, written from portal/ and boot/ only (no test file was read),
none of them the edit of another catalog's entry (checked by applying every entry of every
tests/mutant_*.py and comparing the mutated texts). Written against main at
d7c1bedc63e32c19828525fd3307ec690acbf43c. How drawn: tests.mechanical.pool() (8177 lines),
random.Random(20261211), the k-th draw pool[rng.randrange(len(pool))], one mutant per draw
in order, the most plausible slip at the line (or in its statement or function). Draws
used: 1, 3-13, 15-28, 30-33. Skipped: 2, 14 (imports), 29 (ShutdownDrain.install: already
has draw 26's mutant).

Where the first choice was another catalog's edit, the next most plausible slip in the
function was taken instead of: draw 5 (the empty-file refusal), 6 (an unfinished hour
cached as settled, then the current hour left out), 10 (the implicit ``__context__``
chain), 12 (the first unsent event not released), 25 (the resumed length), 27 (an
unrecorded key's final object), 28 (the totals merged before).

Measured (issue #31) on main at ea96561, after two rounds of pins, the same way as sample 7
(named tests plus every test that ran the lines, then the fast suite for survivors, then
the slow suite and PostgreSQL where they apply; each kill's first failing test passes
without the mutant). None stillborn, none equivalent. Killed: 26 by the first stage, draw
31 on PostgreSQL (``test_part_sql``), draw 26 by the slow gunicorn drain test
(``tests/topology/test_drain.py``): 28 of 30 = 93 %. Survivors, pinned after in
``test_status_trend``: draw 6 (an hour cached as settled the moment it ends, so an upload
committed in the next minutes is never counted), draw 24 (the bytes chart's scale showing
the raw byte count).
"""

from tests.mutant_catalog import Mutant

MUTANTS = (
    # draw 1, portal/services/cleanup/orphans.py:76 (_terminal_sessions)
    Mutant(
        "s9: a dry run counts the parts of live sessions as ones it would expire",
        "portal/services/cleanup/orphans.py",
        (
            (
                "ended |= Q(status__in=UploadSession.OPEN_STATUSES, expires_at__lt=run.now)",
                "ended |= Q(status__in=UploadSession.OPEN_STATUSES, expires_at__gt=run.now)",
            ),
        ),
        (
            "tests/test_cleanup.py",
            "tests/test_cleanup_command.py",
            "tests/test_pins2_jobs_cleanup.py",
        ),
    ),
    # draw 3, portal/checks.py:72 (check_settings)
    Mutant(
        "s9: E005 fires for a missing runner secret even without a runner endpoint",
        "portal/checks.py",
        (
            (
                "            s.PORTAL_RUNNER_ENDPOINT and not s.PORTAL_RUNNER_AUTH_SECRET,\n",
                "            not s.PORTAL_RUNNER_AUTH_SECRET,\n",
            ),
        ),
        ("tests/test_settings.py", "tests/test_pins2_ops_checks.py"),
    ),
    # draw 4, portal/management/commands/portal_upload.py:308 (add_arguments)
    Mutant(
        "s9: portal_upload refuses --retries 0",
        "portal/management/commands/portal_upload.py",
        (
            (
                "type=bounded_int(limits.MAX_CLIENT_RETRIES, lower=0),",
                "type=bounded_int(limits.MAX_CLIENT_RETRIES),",
            ),
        ),
        ("tests/test_upload_client.py", "tests/test_commands.py"),
    ),
    # draw 5, portal/management/commands/portal_upload.py:327 (handle)
    Mutant(
        "s9: portal_upload derives no idempotency key, so a rerun starts afresh",
        "portal/management/commands/portal_upload.py",
        (
            (
                'idempotency_key=options["idempotency_key"] or derived_idempotency_key(path),',
                'idempotency_key=options["idempotency_key"],',
            ),
        ),
        ("tests/test_upload_client.py", "tests/test_commands.py"),
    ),
    # draw 6, portal/services/status/trend.py:46 (hourly_uploads)
    Mutant(
        "s9: an hour is cached as settled the moment it ends, before late commits land",
        "portal/services/status/trend.py",
        (
            (
                "if hour + timedelta(hours=1) <= now - SETTLED_AFTER",
                "if hour + timedelta(hours=1) <= now",
            ),
        ),
        ("tests/test_status_trend.py", "tests/test_status_page.py"),
    ),
    # draw 7, portal/observability.py:57 (RECORD_ATTRS)
    Mutant(
        "s9: console lines repeat the message as a message= extra",
        "portal/observability.py",
        (('    "message",\n    "asctime",\n', '    "asctime",\n'),),
        ("tests/test_logging.py", "tests/test_logging_events.py", "tests/test_pins_ops_logs.py"),
    ),
    # draw 8, portal/services/outbox/dispatch.py:115 (_held)
    Mutant(
        "s9: a dispatcher that lost its lease still overwrites the newer claim's rows",
        "portal/services/outbox/dispatch.py",
        (
            (
                "status=OutboxEvent.Status.SENDING, next_attempt_at=claim.lease_until\n",
                "status=OutboxEvent.Status.SENDING\n",
            ),
        ),
        ("tests/test_outbox_claims.py", "tests/test_dispatch.py", "tests/test_outbox.py"),
    ),
    # draw 9, portal/observability.py:173 (RedactingFilter.text)
    Mutant(
        "s9: a token not at the very start of a log text is not redacted",
        "portal/observability.py",
        (("if TOKEN_HINT.search(value):", "if TOKEN_HINT.match(value):"),),
        ("tests/test_logging.py", "tests/test_pins_ops_logs.py"),
    ),
    # draw 10, portal/health/checks.py:89 (_no_room)
    Mutant(
        "s9: a storage over its quota (EDQUOT) reads as unavailable, not full",
        "portal/health/checks.py",
        (
            (
                "if isinstance(exc, OSError) and exc.errno in NO_ROOM:",
                "if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:",
            ),
        ),
        ("tests/test_health.py", "tests/test_full_volume.py", "tests/test_pins2_storage_health.py"),
    ),
    # draw 11, portal/storage/__init__.py:158 (Backend.iter_object)
    Mutant(
        "s9: a failing backend's read errors are not turned into storage unavailable",
        "portal/storage/__init__.py",
        (
            (
                "        with backend_faults(storage):\n"
                "            yield from self.read(storage, key, chunk_size)\n",
                "        yield from self.read(storage, key, chunk_size)\n",
            ),
        ),
        ("tests/test_storage.py", "tests/test_api_faults.py", "tests/test_pins_store.py"),
    ),
    # draw 12, portal/services/outbox/dispatch.py:281 (_send_batch)
    Mutant(
        "s9: the batch's last delivered event is never logged",
        "portal/services/outbox/dispatch.py",
        (
            (
                "    write_logs()\n"
                "    record_outcomes(claim, delivered, failures, config, result)\n",
                "    record_outcomes(claim, delivered, failures, config, result)\n",
            ),
        ),
        ("tests/test_dispatch.py", "tests/test_outbox.py", "tests/test_outbox_claims.py"),
    ),
    # draw 13, portal/httpclient.py:201 (_HTTPConnection.connect)
    Mutant(
        "s9: a slow answer is reported as a failure to connect",
        "portal/httpclient.py",
        (
            (
                '            self._handshake()\n        self.phase = "answer"\n',
                "            self._handshake()\n",
            ),
        ),
        ("tests/test_httpclient.py", "tests/test_upload_client.py"),
    ),
    # draw 15, portal/services/outbox/__init__.py:80 (enqueue_file_uploaded)
    Mutant(
        "s9: the outbox row's id differs from the event_id in its payload",
        "portal/services/outbox/__init__.py",
        (('            "id": event_id,\n', ""),),
        ("tests/test_outbox.py", "tests/test_api_finalize.py", "tests/test_dispatch.py"),
    ),
    # draw 16, portal/services/tus_stream.py:109 (Body._took)
    Mutant(
        "s9: a body counts only its last read as taken",
        "portal/services/tus_stream.py",
        (
            (
                "        self.taken += len(data)\n\n    def _broke",
                "        self.taken = len(data)\n\n    def _broke",
            ),
        ),
        ("tests/test_tus_api.py", "tests/test_pins_tus.py", "tests/test_tus_edges.py"),
    ),
    # draw 17, portal/httpclient.py:128 (KeepAliveConnection._exchange)
    Mutant(
        "s9: a refused connection is sent into as if connected (http.client connects late)",
        "portal/httpclient.py",
        (
            (
                "        if self._conn.sock is None:\n"
                "            self._conn.connect()"
                "  # failures here are the connection's, never an early answer\n",
                "",
            ),
        ),
        ("tests/test_httpclient.py", "tests/test_upload_client.py", "tests/test_dispatch.py"),
    ),
    # draw 18, portal/services/cleanup/orphans.py:72 (_parts_of_one_session)
    Mutant(
        "s9: a session with more parts than a batch has its parts yielded again and again",
        "portal/services/cleanup/orphans.py",
        (("        last_pk = rows[-1][1]\n", "        last_pk = rows[0][1]\n"),),
        ("tests/test_cleanup.py", "tests/test_cleanup_command.py"),
    ),
    # draw 19, portal/httpclient.py:227 (_HTTPConnection._handshake)
    Mutant(
        "s9: a TLS handshake that times out is reported as a failed handshake",
        "portal/httpclient.py",
        (("            if isinstance(exc, TimeoutError):\n                raise\n", ""),),
        ("tests/test_httpclient.py",),
    ),
    # draw 20, portal/storage/s3_backend.py:47 (S3Storage.connection)
    Mutant(
        "s9: a forked process keeps using its parent's S3 connection",
        "portal/storage/s3_backend.py",
        (
            (
                'if getattr(local, "pid", None) != os.getpid():',
                'if getattr(local, "connection", None) is None:',
            ),
        ),
        ("tests/test_storage_s3_client.py", "tests/test_pins2_storage_s3.py"),
    ),
    # draw 21, portal/services/status/trend.py:139 (uploads_charts)
    Mutant(
        "s9: the bytes chart plots the upload counts",
        "portal/services/status/trend.py",
        (
            (
                "for label, (hour, _, size) in zip(labels, hours, strict=True)",
                "for label, (hour, size, _) in zip(labels, hours, strict=True)",
            ),
        ),
        ("tests/test_status_trend.py", "tests/test_status_page.py"),
    ),
    # draw 22, portal/services/status/page.py:194 (failed_events)
    Mutant(
        "s9: /status lists the failed events that gave up first, not last",
        "portal/services/status/page.py",
        (('failed.order_by("-next_attempt_at")', 'failed.order_by("next_attempt_at")'),),
        (
            "tests/test_status_page.py",
            "tests/test_pins_ops_status.py",
            "tests/test_pins2_ops_status.py",
        ),
    ),
    # draw 23, portal/metrics/figures.py:173 (oldest_finished_session_with_temp_age)
    Mutant(
        "s9: the temp-object age counts from the session's creation, not its end",
        "portal/metrics/figures.py",
        (
            (
                'earliest=Min("finished_at", filter=finished)',
                'earliest=Min("created_at", filter=finished)',
            ),
        ),
        ("tests/test_metrics.py", "tests/test_prometheus.py"),
    ),
    # draw 24, portal/services/status/trend.py:101 (bar_chart)
    Mutant(
        "s9: the chart's scale shows the raw peak, not its formatted value",
        "portal/services/status/trend.py",
        (
            (
                'text-anchor="end">{escape(value_text(peak))}</text>',
                'text-anchor="end">{escape(str(peak))}</text>',
            ),
        ),
        ("tests/test_status_trend.py", "tests/test_status_page.py"),
    ),
    # draw 25, portal/storage/sha256state.py:99 (ResumableSha256.resume)
    Mutant(
        "s9: a saved hash state is resumed without checking it fits the bytes hashed",
        "portal/storage/sha256state.py",
        (("if ctx is None or not _valid(ctx, length):", "if ctx is None:"),),
        ("tests/test_sha256state.py", "tests/test_file_hash.py", "tests/test_tus_api.py"),
    ),
    # draw 26, portal/health/drain.py:88 (ShutdownDrain.install)
    Mutant(
        "s9: the drain's end alarm kills the master instead of stopping it gracefully",
        "portal/health/drain.py",
        (("        signal.signal(signal.SIGALRM, arbiter.signal)\n", ""),),
        ("tests/test_drain.py", "tests/test_pins2_ops_drain.py", "tests/test_upload_gunicorn.py"),
    ),
    # draw 27, portal/services/cleanup/prune.py:83 (_prune_batch)
    Mutant(
        "s9: prune does not record the final objects it failed to delete",
        "portal/services/cleanup/prune.py",
        (("        run.record_failures(outcome.failed)\n", ""),),
        ("tests/test_cleanup.py", "tests/test_cleanup_command.py"),
    ),
    # draw 28, portal/metrics/multiproc.py:105 (merge_dead_files)
    Mutant(
        "s9: merging dead workers' files keeps the last value of each series, not the sum",
        "portal/metrics/multiproc.py",
        (("totals[key] = totals.get(key, 0.0) + value", "totals[key] = value"),),
        ("tests/test_metrics_multiproc.py", "tests/test_metrics.py"),
    ),
    # draw 30, portal/storage/s3_backend.py:177 (S3Backend.delete)
    Mutant(
        "s9: S3 deletes name the keys without the storage's location prefix",
        "portal/storage/s3_backend.py",
        (
            (
                'Delete={"Objects": [{"Key": k} for k in by_s3_key], "Quiet": True},',
                'Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},',
            ),
        ),
        ("tests/test_storage.py", "tests/test_pins2_storage_s3.py", "tests/test_cleanup.py"),
    ),
    # draw 31, portal/services/part_sql.py:95 (lock_session)
    Mutant(
        "s9: lock_session builds its FOR UPDATE but does not pass it on",
        "portal/services/part_sql.py",
        (
            (
                'return _session_row("WHERE", [], pk, lock=lock)',
                'return _session_row("WHERE", [], pk)',
            ),
        ),
        ("tests/test_locks.py", "tests/test_part_sql.py"),
        needs_postgres=True,
    ),
    # draw 32, portal/services/sessions.py:37 (create_session)
    Mutant(
        "s9: an idempotency key reused for a different upload returns the old session",
        "portal/services/sessions.py",
        (("    return _same_request(session, spec), False\n", "    return session, False\n"),),
        ("tests/test_api_sessions.py", "tests/test_pins2_upload_api.py"),
    ),
    # draw 33, portal/storage/local_assembly.py:87 (_copy_in)
    Mutant(
        "s9: a part copied into the session's file is still assembled from its own file",
        "portal/storage/local_assembly.py",
        (
            (
                "        check_range(held[0], offset, placed)\n    return placed\n",
                "        check_range(held[0], offset, placed)\n    return source\n",
            ),
        ),
        ("tests/test_upgrade.py", "tests/test_in_place.py"),
    ),
)
