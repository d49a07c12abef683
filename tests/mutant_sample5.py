"""A fifth independent sample for ``tests/mutants.py`` (issue #31): 30 careless slips at
locations drawn at random over the product code, written from ``portal/`` and ``boot/``
only (no test file was read), none of them the edit of another catalog's entry. Same rules
as ``tests/mutant_catalog.py``.

Written against main at 254260fc26f92dd420e21b1340c24a4a13f3f9aa.

How it was drawn (repeatable): the files of
``find portal boot -name '*.py' -not -path '*/migrations/*' -not -path '*/__pycache__/*'``,
sorted; in each, in order, every line that is not blank, not a comment (first non-space
character ``#``) and not inside a module, class or function docstring (as ``ast`` finds
them) is one entry of the pool (90 files, 8179 lines at that commit). With
``rng = random.Random(20261207)``, the k-th draw is ``pool[rng.randrange(len(pool))]``.
Draws were taken in order; each gave one mutant (the most plausible slip at that line or
in the function holding it) unless its line was pure declaration with no behavioural slip
(an import, a field, a help text, an ``__init__`` that only stores its arguments) or its
function already had a mutant. Draws 1-36 gave the 30; skipped: 9 (import), 25 (the
function of draw 24), 27 and 30 (imports), 29 (``PatternValue.__init__``: only stores the
compiled pattern; ``re.IGNORECASE`` would be equivalent, the patterns take both cases),
35 (``__init__`` that only stores its arguments). Each entry's comment gives its draw.

One entry is marked "(equivalent?)" in its name, with the reason beside it.

Measured (issue #31): at 254260f (before the area pins) its named tests killed 17 of 30.
Not independent after that: it was on main while the area helpers pinned, and three of
its survivors (the newline-only token file, Ctrl-C recorded ok, an https endpoint on port
80) were pinned on purpose. Of its other ten survivors the fast suite at e9be5ef killed
five; left: a stale drain marker of the same pid, the admin changing a token's purpose,
the admin's session page without parts, a one-thread probe pool, a full disk raised while
handling another error. ``tests/mutant_sample6.py`` is the independent measurement.
"""

from tests.mutant_catalog import Mutant

_TUS = ("tests/test_tus_api.py", "tests/test_tus_edges.py", "tests/test_tus_portal.py")
_METRICS = ("tests/test_metrics.py", "tests/test_prometheus.py")
_DISPATCH = ("tests/test_dispatch.py", "tests/test_outbox.py", "tests/test_outbox_claims.py")
_PROBES = ("tests/test_health.py", "tests/test_probe_lanes.py", "tests/test_probes_under_load.py")

MUTANTS = (
    # draw 1, portal/storage/streams.py:131 (BlockReader.close)
    # Equivalent?: the next request allocates fresh buffers; only CPU time differs.
    Mutant(
        "a block reader's buffers are not handed on to the next reader (equivalent?)",
        "portal/storage/streams.py",
        (("            _SPARE.buffers = self._buffers\n", ""),),
        ("tests/test_storage.py", "tests/test_large_parts_on_disk.py"),
    ),
    # draw 2, portal/health/executor.py:103 (_follow.copy)
    Mutant(
        "a probe sharing a failed check never gets its error (the follower is left pending)",
        "portal/health/executor.py",
        (
            (
                "            elif done.exception() is not None:\n"
                "                follower.set_exception(done.exception())\n"
                "            else:\n",
                "            else:\n",
            ),
        ),
        _PROBES,
    ),
    # draw 3, portal/services/tus_patch.py:185 (_Writer._write)
    Mutant(
        "a part the body gave nothing for becomes an empty tail",
        "portal/services/tus_patch.py",
        (("            if place is None and source.taken:\n", "            if place is None:\n"),),
        (*_TUS, "tests/test_in_place.py"),
    ),
    # draw 4, portal/checks.py:60 (check_settings, rule E002)
    Mutant(
        "a chunk size maximum equal to the file size maximum is refused (E002)",
        "portal/checks.py",
        (
            (
                "            high > s.PORTAL_MAX_FILE_SIZE,\n",
                "            high >= s.PORTAL_MAX_FILE_SIZE,\n",
            ),
        ),
        ("tests/test_settings.py",),
    ),
    # draw 5, portal/storage/s3_backend.py:251 (_multipart_etag)
    Mutant(
        "the multipart ETag expected after a lost completion answer lacks the part count",
        "portal/storage/s3_backend.py",
        (
            (
                "hexdigest()}-{len(parts)}\"'",
                "hexdigest()}\"'",
            ),
        ),
        ("tests/test_storage_s3_client.py", "tests/test_storage.py"),
    ),
    # draw 6, portal/services/status/page.py:49 (duration)
    Mutant(
        "a duration of exactly one minute or hour is shown in the smaller unit",
        "portal/services/status/page.py",
        (("        if whole >= size:\n", "        if whole > size:\n"),),
        ("tests/test_status_page.py", "tests/test_status_trend.py"),
    ),
    # draw 7, portal/health/drain.py:107 (Drain.start)
    Mutant(
        "a drain whose marker cannot be written waits its seconds anyway, /ready still 200",
        "portal/health/drain.py",
        (
            (
                '            self.arbiter.log.error("cannot drain, stopping now: marker %s: %s", '
                "self.marker, exc)\n"
                "            self.finish()\n"
                "            return\n",
                '            self.arbiter.log.error("cannot drain, stopping now: marker %s: %s", '
                "self.marker, exc)\n",
            ),
        ),
        ("tests/test_drain.py",),
    ),
    # draw 8, portal/health/drain.py:92 (Drain.install)
    Mutant(
        "a stale drain marker of an earlier arbiter with the same pid is not removed",
        "portal/health/drain.py",
        (("        drain.marker.unlink(missing_ok=True)\n", ""),),
        ("tests/test_drain.py",),
    ),
    # draw 10, portal/metrics/figures.py:66 (capped_count)
    Mutant(
        "the session and outbox counts by status are not capped",
        "portal/metrics/figures.py",
        (
            (
                '    return model.objects.filter(**filters).values("status")[:COUNT_CAP].count()\n',
                '    return model.objects.filter(**filters).values("status").count()\n',
            ),
        ),
        (*_METRICS, "tests/test_status_page.py"),
    ),
    # draw 11, portal/metrics/collector.py:117 (job_families)
    Mutant(
        "the last-run gauge fails for a job that has not finished a run yet",
        "portal/metrics/collector.py",
        (
            (
                "[((j.command,), j.last_run_at.timestamp()) for j in jobs if j.last_run_at],",
                "[((j.command,), j.last_run_at.timestamp()) for j in jobs],",
            ),
        ),
        (*_METRICS, "tests/test_cron.py"),
    ),
    # draw 12, portal/management/token_source.py:42 (read_token_file)
    Mutant(
        "a token file holding only a newline is taken as a token",
        "portal/management/token_source.py",
        (("    if not token.strip():\n", "    if not token:\n"),),
        ("tests/test_upload_token.py", "tests/test_upload_client.py"),
    ),
    # draw 13, portal/admin.py:78 (ApiTokenAdmin)
    Mutant(
        "the admin can change a token's purpose",
        "portal/admin.py",
        (
            (
                'readonly_fields = ("user", "purpose", "key_prefix", "created_at", "last_used_at")',
                'readonly_fields = ("user", "key_prefix", "created_at", "last_used_at")',
            ),
        ),
        ("tests/test_admin.py", "tests/test_tokens.py"),
    ),
    # draw 14, boot/logging.py:62 (ConsoleFormatter.format)
    Mutant(
        "console log lines drop the extra fields that are not context fields",
        "boot/logging.py",
        (("        ordered += sorted(k for k in extras if k not in ordered)\n", ""),),
        ("tests/test_logging.py", "tests/test_logging_events.py"),
    ),
    # draw 15, portal/admin.py:50 (UploadSessionAdmin)
    Mutant(
        "the admin's upload session page lists none of its parts",
        "portal/admin.py",
        (("    inlines = [UploadPartInline]\n", ""),),
        ("tests/test_admin.py",),
    ),
    # draw 16, portal/services/outbox/client.py:48 (DispatchConfig.from_settings)
    Mutant(
        "the outbox retry delay is capped at its base delay",
        "portal/services/outbox/client.py",
        (
            (
                "            max_delay=settings.PORTAL_OUTBOX_MAX_DELAY_SECONDS,\n",
                "            max_delay=settings.PORTAL_OUTBOX_BASE_DELAY_SECONDS,\n",
            ),
        ),
        _DISPATCH,
    ),
    # draw 17, portal/services/jobs.py:66 (job_run)
    Mutant(
        "a job run stopped by Ctrl-C (KeyboardInterrupt) is recorded ok",
        "portal/services/jobs.py",
        (
            (
                "        except BaseException as exc:\n"
                "            state.outcome = JobRun.Outcome.FAILED",
                "        except Exception as exc:\n"
                "            state.outcome = JobRun.Outcome.FAILED",
            ),
        ),
        ("tests/test_cron.py", "tests/test_commands.py", "tests/test_cleanup_command.py"),
    ),
    # draw 18, portal/services/tus_stream.py:79 (Body.read)
    Mutant(
        "a read of no bytes marks the request body as ended early",
        "portal/services/tus_stream.py",
        (
            (
                '        if size <= 0 or self.broken:\n            return b""\n',
                '        if self.broken:\n            return b""\n',
            ),
        ),
        (*_TUS, "tests/test_request_body.py"),
    ),
    # draw 19, portal/metrics/collector.py:189 (session_families)
    Mutant(
        "the open reserved bytes gauge shows the count of temp objects",
        "portal/metrics/collector.py",
        (
            (
                "        samples=[((), fig.open_reserved_bytes())],\n",
                "        samples=[((), fig.tracked_temp_objects())],\n",
            ),
        ),
        _METRICS,
    ),
    # draw 20, portal/views/tus.py:74 (TusHeadersMiddleware.__call__)
    Mutant(
        "answers under the tus endpoint carry no CORS headers",
        "portal/views/tus.py",
        (("            _cors(request, response)\n", ""),),
        _TUS,
    ),
    # draw 21, portal/services/outbox/dispatch.py:269 (_send_batch)
    Mutant(
        "the runner is told attempt 0 on an event's first delivery",
        "portal/services/outbox/dispatch.py",
        (("            attempt=event.attempts + 1,\n", "            attempt=event.attempts,\n"),),
        _DISPATCH,
    ),
    # draw 22, portal/views/uploads.py:33 (api_endpoint)
    # The test client skips CSRF checks unless asked; a real client gets 403.
    Mutant(
        "the JSON upload API is not exempt from CSRF",
        "portal/views/uploads.py",
        (("    @csrf_exempt\n    @functools.wraps(view)\n", "    @functools.wraps(view)\n"),),
        (
            "tests/test_api_sessions.py",
            "tests/test_upload_gunicorn.py",
            "tests/test_upload_client.py",
        ),
    ),
    # draw 23, portal/health/executor.py:27 (SingleFlightExecutor.__init__)
    Mutant(
        "the probe pool has one thread: a hung check holds up the others",
        "portal/health/executor.py",
        (
            (
                "    def __init__(self, max_workers=PROBE_POOL_THREADS):\n",
                "    def __init__(self, max_workers=1):\n",
            ),
        ),
        _PROBES,
    ),
    # draw 24, portal/services/finalize/__init__.py:44 (run_finalize_job)
    Mutant(
        "portal_finalize's summary does not say why it stopped",
        "portal/services/finalize/__init__.py",
        (('        "stopped": stopped,\n', ""),),
        ("tests/test_finalize_async.py", "tests/test_commands.py", "tests/test_finalize_lease.py"),
    ),
    # draw 26, portal/storage/local_backend.py:70 (LocalBackend.final_bytes)
    Mutant(
        "a final file linked on the same filesystem asks for room for a full copy",
        "portal/storage/local_backend.py",
        (
            (
                "        with backend_faults(self.final):\n"
                "            if local_in_place.same_filesystem(self.temp, self.final):\n"
                "                return 0\n"
                "        return super().final_bytes(sources)\n",
                "        return super().final_bytes(sources)\n",
            ),
        ),
        ("tests/test_finalize_room.py", "tests/test_full_volume.py", "tests/test_storage_links.py"),
    ),
    # draw 28, portal/services/outbox/dispatch.py:204 (requeue_failed)
    Mutant(
        "a requeued failed event keeps its used-up attempts",
        "portal/services/outbox/dispatch.py",
        (
            (
                "status=OutboxEvent.Status.PENDING, attempts=0, next_attempt_at=now, "
                "updated_at=now",
                "status=OutboxEvent.Status.PENDING, next_attempt_at=now, updated_at=now",
            ),
        ),
        (*_DISPATCH[:2], "tests/test_status_page.py", "tests/test_admin.py"),
    ),
    # draw 31, portal/httpclient.py:69 (KeepAliveConnection.__init__)
    Mutant(
        "an https runner endpoint without a port is called on port 80",
        "portal/httpclient.py",
        (
            (
                "default_port = http.client.HTTP_PORT if self._tls is None "
                "else http.client.HTTPS_PORT",
                "default_port = http.client.HTTP_PORT",
            ),
        ),
        ("tests/test_httpclient.py", "tests/test_dispatch.py"),
    ),
    # draw 32, portal/observability.py:98 (ContextFilter.filter)
    Mutant(
        "log records about a request lack its http_method",
        "portal/observability.py",
        (("            record.http_method = request.method\n", ""),),
        ("tests/test_logging.py", "tests/test_logging_events.py"),
    ),
    # draw 33, portal/services/chunks.py:62 (receive_part)
    Mutant(
        "a replayed part's new bytes are not discarded",
        "portal/services/chunks.py",
        (("            discard(stored, place)  # nothing of it is recorded\n", ""),),
        ("tests/test_api_parts.py", "tests/test_in_place.py", "tests/test_cleanup.py"),
    ),
    # draw 34, portal/health/checks.py:89 (_no_room)
    Mutant(
        "a full disk raised while handling another error is not seen as full",
        "portal/health/checks.py",
        (("        exc = exc.__cause__ or exc.__context__\n", "        exc = exc.__cause__\n"),),
        ("tests/test_health.py", "tests/test_full_volume.py"),
    ),
    # draw 36, portal/httpclient.py:111 (KeepAliveConnection._timeout_message)
    Mutant(
        "a read timeout's message does not name the host and port",
        "portal/httpclient.py",
        (
            (
                '        return f"{peer} did not answer within {seconds:g} s"\n',
                '        return f"the server did not answer within {seconds:g} s"\n',
            ),
        ),
        ("tests/test_httpclient.py", "tests/test_dispatch.py"),
    ),
)
