"""A twelfth independent sample for tests/mutants.py: 30 careless slips at random lines,
written from portal/ and boot/ only (no test file read), none another catalog's edit
(compared as mutated texts), against main at c5e0085b0ceb. Drawn as sample 10 with seed
20261214 (pool 8178 lines). Draws used: 1-6, 8, 9, 11-13, 15-24, 26, 27, 29-33, 35, 36.
Skipped: imports (10, 25, 34), declarations (7 a help text, 14 the Source dataclass's
fields), 28 (build_logging has draw 6's). Where a line allows no plausible slip, the slip is
in its statement or function (1, 6, 11, 24, 27, 31, 36). Draw 35 carries its function's
second slip (the first was another catalog's entry).

Measured (issue #31) as sample 11, at 180c247. None equivalent. Killed 26: draw 12 only
by the fast suite (a class attribute: the coverage record sees no test run it), draw 16
only by the gunicorn load test, draw 17 only on PostgreSQL. Survivors: 20 (S3 part copies
to the wrong key; moto ignores it: test_pins6_store_s3 answers as S3 does), 24 (an empty
password scrubbed; test_pins6_out_outbox), 30 (Basic credentials with + or /;
test_pins4_ops_logs), 8 (a quitting gunicorn worker waits for its lane threads in the
signal handler, so it logs its exit and runs its exit hook only when a trickling upload
ends; test_probe_lanes), all pinned after. 26 of 30 = 87 %.
"""

from tests.mutant_catalog import Mutant

MUTANTS = (
    # draw 1, portal/auth.py:33 (authenticate)
    Mutant(
        "s12: an authenticated request no longer records the token's last use",
        "portal/auth.py",
        (("    _touch(token)\n    return token.user", "    return token.user"),),
        ("tests/test_tokens.py", "tests/test_upload_token.py"),
    ),
    # draw 2, portal/metrics/collector.py:61 (PortalCollector.read)
    Mutant(
        "s12: a scrape reads portal_metrics_database_up 1 while the database fails",
        "portal/metrics/collector.py",
        (("            families = None\n", "            families = []\n"),),
        ("tests/test_metrics.py", "tests/test_prometheus.py"),
    ),
    # draw 3, portal/metrics/http.py:23 (REQUESTS)
    Mutant(
        "s12: the request counter is declared without its status label",
        "portal/metrics/http.py",
        (('    ["view", "method", "status"],', '    ["view", "method"],'),),
        ("tests/test_metrics.py", "tests/test_prometheus.py"),
    ),
    # draw 4, boot/settings.py:314 (Prod)
    Mutant(
        "s12: production settings inherit the development ones (DEBUG on, console logs)",
        "boot/settings.py",
        (("class Prod(Base):", "class Prod(Dev):"),),
        ("tests/test_settings.py",),
    ),
    # draw 5, portal/storage/local_backend.py:131 (PartRange.abandon)
    Mutant(
        "s12: abandoning a part's range deletes the session file even if another request made it",
        "portal/storage/local_backend.py",
        (
            (
                "if self.created:\n            local.unlink_quietly(self.storage, self.key)",
                "if True:\n            local.unlink_quietly(self.storage, self.key)",
            ),
        ),
        ("tests/test_in_place.py", "tests/test_large_parts_on_disk.py"),
    ),
    # draw 6, boot/logging.py:205 (build_logging)
    Mutant(
        "s12: a bad Host header is logged as an ERROR with its stack (no client_error filter)",
        "boot/logging.py",
        (
            (
                '"django.security.DisallowedHost": logger(filters=["client_error"]),',
                '"django.security.DisallowedHost": logger(),',
            ),
        ),
        ("tests/test_logging.py", "tests/test_logging_events.py"),
    ),
    # draw 8, portal/health/lanes.py:83 (ProbeLaneWorker._shutdown_lanes)
    Mutant(
        "s12: a quitting worker waits for its lane threads (a hung upload holds the exit)",
        "portal/health/lanes.py",
        (("pool.shutdown(wait=False)", "pool.shutdown()"),),
        ("tests/test_probe_lanes.py", "tests/test_upload_gunicorn.py"),
    ),
    # draw 9, portal/storage/streams.py:177 (write_blocks)
    Mutant(
        "s12: each block is written at the offset after its own (the range shifted by a block)",
        "portal/storage/streams.py",
        (
            (
                "            pwrite_all(fd, data, offset)\n            offset += len(data)\n",
                "            offset += len(data)\n            pwrite_all(fd, data, offset)\n",
            ),
        ),
        ("tests/test_in_place.py", "tests/test_storage.py"),
    ),
    # draw 11, portal/services/sessions.py:210 (get_session)
    Mutant(
        "s12: a session is found by its id whoever owns it",
        "portal/services/sessions.py",
        (
            (
                'UploadSession.objects.filter(pk=pk, owner=owner).select_related("file")',
                'UploadSession.objects.filter(pk=pk).select_related("file")',
            ),
        ),
        ("tests/test_api_sessions.py", "tests/test_api_finalize.py"),
    ),
    # draw 12, portal/admin.py:50 (UploadSessionAdmin)
    Mutant(
        "s12: the session's admin page no longer lists its parts",
        "portal/admin.py",
        (("    inlines = [UploadPartInline]", "    inlines = []"),),
        ("tests/test_admin.py",),
    ),
    # draw 13, portal/management/token_source.py:42 (read_token_file)
    Mutant(
        "s12: the --token-file warning prints the whole st_mode (100644), not the permissions",
        "portal/management/token_source.py",
        (("{mode & 0o777:o}", "{mode:o}"),),
        ("tests/test_upload_client.py", "tests/test_commands.py"),
    ),
    # draw 15, portal/services/finalize/assembly.py:155 (_commit)
    Mutant(
        "s12: file.stored names the file's id as its session_id",
        "portal/services/finalize/assembly.py",
        (
            (
                '        "file assembled and stored",\n        session_id=str(session.pk),',
                '        "file assembled and stored",\n        session_id=str(file.pk),',
            ),
        ),
        ("tests/test_logging_events.py", "tests/test_api_finalize.py"),
    ),
    # draw 16, boot/settings.py:198 (Base.DATABASES)
    Mutant(
        "s12: SQLite transactions start deferred (a write after a read hits 'database is locked')",
        "boot/settings.py",
        (('"transaction_mode": "IMMEDIATE",', '"transaction_mode": "DEFERRED",'),),
        ("tests/test_settings.py", "tests/test_locks.py"),
    ),
    # draw 17, portal/services/part_sql.py:74 (_session_row)
    Mutant(
        "s12: lock_session's SELECT leaves out FOR UPDATE (the row is not locked)",
        "portal/services/part_sql.py",
        (('s.{S.id} = %s{lock}"', 's.{S.id} = %s"'),),
        ("tests/test_part_sql.py", "tests/test_parts.py"),
        needs_postgres=True,
    ),
    # draw 18, portal/services/finalize/assembly.py:96 (_build)
    Mutant(
        "s12: the final key's date is the assembly's day, not the file's creation day",
        "portal/services/finalize/assembly.py",
        (("            now=file.created_at,\n", ""),),
        ("tests/test_api_finalize.py", "tests/test_finalize_async.py"),
    ),
    # draw 19, boot/logging.py:66 (_console_value)
    Mutant(
        "s12: a console value with a space inside is printed unquoted",
        "boot/logging.py",
        (("any(c.isspace() for c in text)", "all(c.isspace() for c in text)"),),
        ("tests/test_logging.py",),
    ),
    # draw 20, portal/storage/s3_backend.py:123 (S3Backend._copy_parts)
    Mutant(
        "s12: S3 part copies go to the source's key, not the multipart upload's",
        "portal/storage/s3_backend.py",
        (
            (
                "                    Key=dest,\n                    UploadId=upload_id,",
                "                    Key=s.key,\n                    UploadId=upload_id,",
            ),
        ),
        ("tests/test_file_hash.py", "tests/test_storage_s3_client.py"),
    ),
    # draw 21, portal/dbgate.py:81 (DatabaseGateMiddleware.__call__)
    Mutant(
        "s12: a CORS preflight goes through the database gate (503 while it is down)",
        "portal/dbgate.py",
        (
            (
                "nothing read\n            return self.get_response(request)\n",
                "nothing read\n            pass\n",
            ),
        ),
        ("tests/test_dbgate.py",),
    ),
    # draw 22, portal/dbgate.py:39 (DatabaseGate.admit)
    Mutant(
        "s12: the request due to retry the database is turned away (the gate never reopens)",
        "portal/dbgate.py",
        (
            (
                "            self._trying = True\n            return True\n",
                "            self._trying = True\n",
            ),
        ),
        ("tests/test_dbgate.py",),
    ),
    # draw 23, portal/services/outbox/client.py:130 (RunnerClient.send)
    Mutant(
        "s12: a delivery's duration_ms mixes wall-clock and monotonic time",
        "portal/services/outbox/client.py",
        (("        started = time.monotonic()\n", "        started = time.time()\n"),),
        ("tests/test_outbox.py", "tests/test_dispatch.py"),
    ),
    # draw 24, portal/services/outbox/client.py:151 (RunnerClient._scrub)
    Mutant(
        "s12: an empty secret (a URL user without password) garbles every error text",
        "portal/services/outbox/client.py",
        (
            (
                "            if secret:\n                text = text.replace(",
                "            text = text.replace(",
            ),
        ),
        ("tests/test_outbox.py", "tests/test_outbox_peers.py"),
    ),
    # draw 26, portal/storage/s3_backend.py:154 (S3Backend.read)
    Mutant(
        "s12: an S3 read asks for the key without the storage's prefix",
        "portal/storage/s3_backend.py",
        (
            (
                "Bucket=storage.bucket_name, Key=storage._normalize_name(key)\n            )\n"
                "        except client.exceptions.NoSuchKey",
                "Bucket=storage.bucket_name, Key=key\n            )\n"
                "        except client.exceptions.NoSuchKey",
            ),
        ),
        ("tests/test_storage.py", "tests/test_storage_s3_client.py"),
    ),
    # draw 27, portal/services/finalize/request.py:97 (Assembler.__init__)
    Mutant(
        "s12: the assembly thread runs without the request's context (no request_id on its logs)",
        "portal/services/finalize/request.py",
        (
            (
                "threading.Thread(target=context.run, args=(self._run,), name=name, daemon=True)",
                "threading.Thread(target=self._run, name=name, daemon=True)",
            ),
        ),
        ("tests/test_finalize_async.py", "tests/test_logging_events.py"),
    ),
    # draw 29, portal/services/errors.py:47 (Unauthorized.headers)
    Mutant(
        "s12: Unauthorized.headers is a method, not a property (every 401 becomes a 500)",
        "portal/services/errors.py",
        (
            (
                '    @property\n    def headers(self):\n        if self.code == "invalid_token":',
                '    def headers(self):\n        if self.code == "invalid_token":',
            ),
        ),
        ("tests/test_tokens.py", "tests/test_api_sessions.py"),
    ),
    # draw 30, portal/observability.py:120 (TOKEN_PATTERNS)
    Mutant(
        "s12: Basic credentials are redacted only up to their first + or /",
        "portal/observability.py",
        ((r"(\bBasic\s+)[A-Za-z0-9+/]{8,}", r"(\bBasic\s+)[A-Za-z0-9]{8,}"),),
        ("tests/test_logging.py", "tests/test_outbox.py"),
    ),
    # draw 31, portal/health/views.py:162 (StatusView.get)
    Mutant(
        "s12: a failing HTML status page is also logged by django.request",
        "portal/health/views.py",
        (
            (
                "failed=failed)\n        response._has_been_logged = True\n",
                "failed=failed)\n",
            ),
        ),
        ("tests/test_status_page.py", "tests/test_logging_events.py"),
    ),
    # draw 32, portal/services/tus_patch.py:89 (_patch)
    Mutant(
        "s12: a PATCH is verified against the raw Upload-Checksum header, not the parsed one",
        "portal/services/tus_patch.py",
        (("writer.run(body, offset, checked)", "writer.run(body, offset, checksum)"),),
        ("tests/test_tus_api.py", "tests/test_tus_edges.py"),
    ),
    # draw 33, boot/settings.py:242 (Base._s3_storage)
    Mutant(
        "s12: S3's read timeout is set from AWS_S3_CONNECT_TIMEOUT_SECONDS",
        "boot/settings.py",
        (
            (
                "read_timeout=self.AWS_S3_READ_TIMEOUT_SECONDS,",
                "read_timeout=self.AWS_S3_CONNECT_TIMEOUT_SECONDS,",
            ),
        ),
        ("tests/test_settings.py", "tests/test_storage_s3_client.py"),
    ),
    # draw 35, portal/checks.py:90 (check_settings)
    Mutant(
        "s12: E013 fires with PORTAL_MIN_FREE_BYTES off (0): a reserve of 0 fails the checks",
        "portal/checks.py",
        (("minimum and reserve >= minimum,", "reserve >= minimum,"),),
        ("tests/test_settings.py", "tests/test_full_volume.py"),
    ),
    # draw 36, portal/health/views.py:189 (wants_json)
    Mutant(
        "s12: a request without an Accept header gets /status as JSON (no login redirect)",
        "portal/health/views.py",
        (
            (
                'request.headers.get("accept", "*/*")',
                'request.headers.get("accept", "application/json")',
            ),
        ),
        ("tests/test_status_page.py", "tests/test_health.py"),
    ),
)
