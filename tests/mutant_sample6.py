"""A sixth independent sample for ``tests/mutants.py``: 30 careless slips at locations
drawn at random over the product code, written from ``portal/`` and ``boot/`` only (no
test file was read), none of them the edit of another catalog's entry. Same rules as
``tests/mutant_catalog.py``.

Written against main at de27b4f912ee83c732df0ef2968992bac62e8cc7.

How it was drawn (repeatable): the files of
``find portal boot -name '*.py' -not -path '*/migrations/*' -not -path '*/__pycache__/*'``,
sorted; in each, in order, every line that is not blank, not a comment (first non-space
character ``#``) and not inside a module, class or function docstring (as ``ast`` finds
them) is one entry of the pool (90 files, 8179 lines at that commit). With
``rng = random.Random(20261208)``, the k-th draw is ``pool[rng.randrange(len(pool))]``.
Draws were taken in order; each gave one mutant (the most plausible slip at that line or
in the function holding it) unless its line was pure declaration with no behavioural slip
or its function already had a mutant. Draws 1-37 gave the 30; skipped: 6, 11 and 26
(imports), 10 (``DatabaseGateMiddleware.__init__``: only stores ``get_response``), 17 (an
``__all__`` entry), 30 (a model field declaration), 33 (``FILE_UPLOAD_MAX_MEMORY_SIZE``:
the product takes no multipart form uploads, so no value of it is observable). Each
entry's comment gives its draw. Draw 2's line (``conn.data_ready = True``) only spares a
wait for bytes already peeked; its mutant is the slip in the same function instead.
Draw 36's first slip (the sessions count) was another catalog's edit: replaced in its function.

One entry is marked "(equivalent?)" in its name, with the reason beside it.

Measured (issue #31) on main at e9be5ef, all area pins merged and none aimed at this
sample: each mutant's named tests, then the fast suite (``-m "not slow and not
reliability"``; ``test_mutant_catalogs``/``test_architecture`` left out, they fail for any
edit), then the slow and reliability tests, and the S3 pass for the one in S3 code (none
touches SQL: no PostgreSQL pass). Equivalent: "usage 2 lost" (a job report's exit code is
only 0 or 1, CommandError's default) and "claims 20 events at a time" (every due event is
still sent). Killed: 16 by their named tests, 7 more by the fast suite, none by the slow
tests or S3: 23 of 28 = 82 %. Two kills by tests failing under load (busy upload client,
probes under load) did not repeat alone and are not counted. Survivors: the multipart
listing outage, the finalize summary's "drained", a job's lines without run_id, the proxy
setting not reaching logging, a send timeout swallowed; the middle three were pinned after
the measurement (entries name the tests).
"""

from tests.mutant_catalog import Mutant

MUTANTS = (
    # draw 1, portal/services/cleanup/sweep.py:57 (abort_stale_multipart_uploads)
    Mutant(
        "s6: a storage outage while listing multipart uploads is swallowed, not recorded",
        "portal/services/cleanup/sweep.py",
        (
            (
                "    except storage.StorageUnavailable as exc:\n"
                '        run.record_failures({"(multipart listing)": str(exc)[:200]})',
                "    except storage.StorageUnavailable:\n        pass",
            ),
        ),
        ("tests/test_cleanup.py", "tests/test_cleanup_command.py"),
    ),
    # draw 2, portal/health/lanes.py:103 (enqueue_req)
    Mutant(
        "s6: the probe lane reads the request's first bytes off the socket instead of peeking",
        "portal/health/lanes.py",
        (
            (
                'conn.sock.recv(PEEK_BYTES, socket.MSG_PEEK | getattr(socket, "MSG_DONTWAIT", 0))',
                'conn.sock.recv(PEEK_BYTES, getattr(socket, "MSG_DONTWAIT", 0))',
            ),
        ),
        ("tests/test_probe_lanes.py", "tests/test_health_server.py"),
    ),
    # draw 3, portal/services/sessions.py:84 (_log_created)
    Mutant(
        "s6: the session.created log line lacks size_bytes",
        "portal/services/sessions.py",
        (
            (
                "        size_bytes=session.total_size_bytes,\n"
                "        total_parts=session.total_parts,",
                "        total_parts=session.total_parts,",
            ),
        ),
        ("tests/test_logging_events.py", "tests/test_api_sessions.py"),
    ),
    # draw 4, boot/logging.py:137 (access log filter)
    Mutant(
        "s6: an access line without a request id carries request_id '-'",
        "boot/logging.py",
        (('if request_id and request_id != "-":', "if request_id:"),),
        ("tests/test_logging.py", "tests/test_logging_processes.py"),
    ),
    # draw 5, portal/services/finalize/__init__.py:33 (run_finalize_job)
    Mutant(
        "s6: portal_finalize stopped by --max-seconds reports stopped=drained",
        "portal/services/finalize/__init__.py",
        (('stopped = "time"\n                break', "break"),),
        ("tests/test_finalize_lease.py", "tests/test_finalize_async.py", "tests/test_commands.py"),
    ),
    # draw 7, portal/services/sessions.py:106 (_same_request)
    Mutant(
        "s6: an idempotency key reused with another size_bytes returns the first session",
        "portal/services/sessions.py",
        (
            (
                '"size_bytes": session.total_size_bytes,\n        "content_type"',
                '"content_type"',
            ),
        ),
        ("tests/test_api_sessions.py",),
    ),
    # draw 8, portal/metrics/views.py:32 (metrics)
    Mutant(
        "s6: /metrics ignores the Accept header (no OpenMetrics negotiation)",
        "portal/metrics/views.py",
        (('choose_encoder(request.headers.get("Accept", ""))', 'choose_encoder("")'),),
        ("tests/test_metrics.py", "tests/test_prometheus.py", "tests/test_metrics_access.py"),
    ),
    # draw 9, portal/metrics/collector.py:169 (session_families)
    Mutant(
        "s6: the oldest-expired-session gauge reports the stalled assembly age (copy-paste)",
        "portal/metrics/collector.py",
        (
            (
                "samples=[((), fig.oldest_expired_open_session_age(now))]",
                "samples=[((), fig.stalled_assembly_age(now))]",
            ),
        ),
        ("tests/test_metrics.py", "tests/test_prometheus.py"),
    ),
    # draw 12, portal/services/chunks.py:189 (expected Content-Length check)
    Mutant(
        "s6: a part's Content-Length too large/too small get each other's status and code",
        "portal/services/chunks.py",
        (("if declared > expected", "if declared < expected"),),
        ("tests/test_api_parts.py", "tests/test_request_body.py"),
    ),
    # draw 13, portal/management/base.py:91 (JobCommand.handle)
    Mutant(
        "s6: a job command's failure exits 1 whatever its exit code (usage 2 lost)",
        "portal/management/base.py",
        (
            (
                "raise CommandError(report.problem, returncode=report.exit_code)",
                "raise CommandError(report.problem)",
            ),
        ),
        ("tests/test_commands.py", "tests/test_cleanup_command.py"),
    ),
    # draw 14, portal/services/outbox/__init__.py:59 (build_file_uploaded_payload)
    Mutant(
        "s6: the file.uploaded payload lacks the file's filename",
        "portal/services/outbox/__init__.py",
        (
            (
                '"filename": file.original_filename,\n            "content_type"',
                '"content_type"',
            ),
        ),
        ("tests/test_outbox.py", "tests/test_dispatch.py"),
    ),
    # draw 15, portal/services/errors.py:54 (MethodNotAllowed)
    Mutant(
        "s6: a 405 carries no Allow header",
        "portal/services/errors.py",
        (('return {"Allow": ", ".join(self.allowed)}', "return {}"),),
        ("tests/test_api_faults.py", "tests/test_metrics_access.py", "tests/test_tus_api.py"),
    ),
    # draw 16, portal/services/filehash.py:87 (for_assembly)
    Mutant(
        "s6: finalize resumes the saved hash but hashes its parts again from part 1",
        "portal/services/filehash.py",
        (
            (
                "return (resumed, session.hashed_parts) if resumed is not None else (None, 0)",
                "return (resumed, 0) if resumed is not None else (None, 0)",
            ),
        ),
        ("tests/test_file_hash.py", "tests/test_file_hash_catch_up.py"),
    ),
    # draw 18, portal/storage/local_assembly.py:108 (_hash_the_rest)
    Mutant(
        "s6: local assembly never waits for its per-part sha256 check (a mismatch passes)",
        "portal/storage/local_assembly.py",
        (
            (
                "check.result()\n            progress(offsets[i + 1])",
                "progress(offsets[i + 1])",
            ),
        ),
        ("tests/test_file_hash.py", "tests/test_in_place.py", "tests/test_storage.py"),
    ),
    # draw 19, portal/services/outbox/dispatch.py:297 (sending one claim)
    Mutant(
        "s6: a failed delivery is not recorded (no retry scheduled, attempts not counted)",
        "portal/services/outbox/dispatch.py",
        (("failures.append(Failure(event, outcome))", "pass"),),
        ("tests/test_dispatch.py", "tests/test_outbox.py"),
    ),
    # draw 20, portal/services/part_sql.py:117 (insert_part)
    Mutant(
        "s6: a recorded part loses its temp_offset (in-place parts' range unknown)",
        "portal/services/part_sql.py",
        (("        P.temp_offset: stored.offset,\n        P.md5", "        P.md5"),),
        ("tests/test_part_sql.py", "tests/test_in_place.py", "tests/test_api_finalize.py"),
    ),
    # draw 21, portal/services/outbox/dispatch.py:29 (CLAIM_BATCH_SIZE)
    # equivalent? a run still sends every due event; only the number of claims changes.
    Mutant(
        "s6: the dispatcher claims 20 events at a time, not 200 (equivalent?)",
        "portal/services/outbox/dispatch.py",
        (("CLAIM_BATCH_SIZE = 200", "CLAIM_BATCH_SIZE = 20"),),
        ("tests/test_dispatch.py", "tests/test_outbox_claims.py"),
    ),
    # draw 22, portal/management/commands/portal_upload.py:84 (call)
    Mutant(
        "s6: portal_upload tries a request retries times, not retries + 1 (off by one)",
        "portal/management/commands/portal_upload.py",
        (
            (
                "for attempt in range(self.retries + 1):",
                "for attempt in range(self.retries):",
            ),
        ),
        ("tests/test_upload_client.py", "tests/test_upload_client_busy.py"),
    ),
    # draw 23, portal/services/finalize/request.py:77 (_outcome)
    Mutant(
        "s6: a finalize waiting on an aborted or expired session waits on instead of 410",
        "portal/services/finalize/request.py",
        (("    ensure_open(session)\n    return None", "    return None"),),
        ("tests/test_api_finalize.py", "tests/test_finalize_async.py"),
    ),
    # draw 24, portal/storage/local_backend.py:118 (copy_to_temp)
    Mutant(
        "s6: a tus tail copied out of its range is hashed from the file's start",
        "portal/storage/local_backend.py",
        (
            (
                "local_assembly.hash_range(hashlib.sha256(), self.fd, self.offset, size)",
                "local_assembly.hash_range(hashlib.sha256(), self.fd, 0, size)",
            ),
        ),
        ("tests/test_in_place.py", "tests/test_tus_api.py", "tests/test_tus_edges.py"),
    ),
    # draw 25, portal/services/chunks.py:74 (store_part)
    Mutant(
        "s6: part.received logs the chunk size, not the part's (wrong for the last part)",
        "portal/services/chunks.py",
        (
            (
                "part_number=part_number,\n        size_bytes=stored.size,",
                "part_number=part_number,\n        size_bytes=session.chunk_size_bytes,",
            ),
        ),
        ("tests/test_logging_events.py", "tests/test_api_parts.py"),
    ),
    # draw 27, portal/services/jobs.py:77 (job_run)
    Mutant(
        "s6: a job run's log lines lack run_id",
        "portal/services/jobs.py",
        (("with bind(job=job, run_id=run_id):", "with bind(job=job):"),),
        ("tests/test_logging.py", "tests/test_logging_events.py"),  # the first: a later pin
    ),
    # draw 28, portal/storage/sha256state.py:49 (_version)
    Mutant(
        "s6: OpenSSL_version is called without its char* restype",
        "portal/storage/sha256state.py",
        (
            (
                "function.argtypes, function.restype = [ctypes.c_int], ctypes.c_char_p",
                "function.argtypes = [ctypes.c_int]",
            ),
        ),
        ("tests/test_sha256state.py", "tests/test_file_hash.py"),
    ),
    # draw 29, portal/services/outbox/dispatch.py:170 (recording a failed delivery)
    Mutant(
        "s6: outbox.gave_up is logged at WARNING, not ERROR",
        "portal/services/outbox/dispatch.py",
        (
            (
                "level=logging.ERROR,\n            max_attempts=config.max_attempts,",
                "level=logging.WARNING,\n            max_attempts=config.max_attempts,",
            ),
        ),
        ("tests/test_dispatch.py", "tests/test_outbox.py"),
    ),
    # draw 31, portal/middleware.py:13 (_SAFE_REQUEST_ID)
    Mutant(
        "s6: a client's request id with a dot is replaced by a new one",
        "portal/middleware.py",
        (("[A-Za-z0-9._-]", "[A-Za-z0-9_-]"),),
        ("tests/test_logging.py", "tests/test_api_faults.py"),
    ),
    # draw 32, boot/settings.py:247 (LOGGING)
    Mutant(
        "s6: PORTAL_BEHIND_PROXY no longer reaches the logging config",
        "boot/settings.py",
        (
            (
                "level=self.PORTAL_LOG_LEVEL,\n            behind_proxy=self.PORTAL_BEHIND_PROXY,",
                "level=self.PORTAL_LOG_LEVEL,",
            ),
        ),
        ("tests/test_pins_ops_logs.py", "tests/test_settings.py"),  # the first: a later pin
    ),
    # draw 34, portal/services/errors.py:48 (Unauthorized.headers)
    Mutant(
        's6: a 401 for a bad token omits error="invalid_token" in WWW-Authenticate',
        "portal/services/errors.py",
        (
            (
                'return {"WWW-Authenticate": f\'{AUTH_REALM}, error="invalid_token"\'}',
                'return {"WWW-Authenticate": AUTH_REALM}',
            ),
        ),
        ("tests/test_tokens.py", "tests/test_upload_token.py", "tests/test_api_faults.py"),
    ),
    # draw 35, portal/httpclient.py:131 (_exchange)
    Mutant(
        "s6: a timeout while sending the request is swallowed like an early answer",
        "portal/httpclient.py",
        (
            (
                "            except TimeoutError:\n                raise\n"
                "            except OSError:",
                "            except OSError:",
            ),
        ),
        ("tests/test_httpclient.py", "tests/test_upload_client.py"),
    ),
    # draw 36, portal/services/cleanup/orphans.py:19 (cleanup_orphan_temp_parts)
    Mutant(
        "s6: orphans never releases its last, partial batch of temp objects",
        "portal/services/cleanup/orphans.py",
        (
            (
                "        if pending:\n"
                "            in_flight = _release(pending, run, pool, in_flight)",
                "        pass",
            ),
        ),
        ("tests/test_cleanup.py", "tests/test_cleanup_command.py"),
    ),
    # draw 37, portal/health/checks.py:124 (job freshness measure)
    Mutant(
        "s6: a job's last PARTIAL run does not count as completed for its health check",
        "portal/health/checks.py",
        (
            (
                "outcome__in=[JobRun.Outcome.OK, JobRun.Outcome.PARTIAL]",
                "outcome__in=[JobRun.Outcome.OK]",
            ),
        ),
        ("tests/test_health.py", "tests/test_cron.py"),
    ),
)
