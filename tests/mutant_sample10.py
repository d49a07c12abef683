"""A tenth independent sample for tests/mutants.py: 30 careless slips at random lines,
written from portal/ and boot/ only (no test file read), none another catalog's edit
(compared as mutated texts), against main at ea965616a64b. Drawn as sample 9 with seed
20261212 (pool 8178 lines). Draws used: 1-9, 13, 17-25, 27-29, 31, 32, 34-38, 40. Skipped:
imports (10-12, 14, 15, 26), declarations (16 a PART_FIELDS column, 30 a model choice, 33
MIN_RUNNER_SECRET_CHARS), 39 (receive_part has draw 35's). Draws 17, 24, 35 carry their
function's second slip (the first was another catalog's entry).

Measured (issue #31) at cca8921 as sample 9 (plus the S3 pass for draw 34). Equivalent:
draw 20 (the outbox check's name is read nowhere). Killed 26 by the first stage: 26 of 29
= 90 %. Survivors, pinned after: 19 (the admin requeuing every failed event, not the
selected; test_admin), 23 (a skipped cleanup also logging cleanup.finished;
test_cleanup_command), 34 (S3 multipart uploads younger than the grace aborted;
test_pins_jobs)."""

from tests.mutant_catalog import Mutant

MUTANTS = (
    # draw 1, portal/management/commands/portal_upload.py:131 (_once)
    Mutant(
        "s10: the upload client gives up at once on a part still in progress instead of retrying",
        "portal/management/commands/portal_upload.py",
        (
            (
                'error.get("code") in RETRYABLE_CODES:',
                'error.get("code") in RETRYABLE_STATUS:',
            ),
        ),
        ("tests/test_upload_client.py", "tests/test_upload_client_busy.py"),
    ),
    # draw 2, portal/views/tus.py:89 (_cors)
    Mutant(
        "s10: a CORS answer allows every origin instead of echoing the allowed one",
        "portal/views/tus.py",
        (
            (
                'response["Access-Control-Allow-Origin"] = origin',
                'response["Access-Control-Allow-Origin"] = "*"',
            ),
        ),
        ("tests/test_tus_portal.py", "tests/test_tus_api.py", "tests/test_pins_tus.py"),
    ),
    # draw 3, portal/metrics/collector.py:54 (collect)
    Mutant(
        "s10: the metrics cache keeps a spent generator: a second scrape in cache time is empty",
        "portal/metrics/collector.py",
        (
            (
                "                families = list(self.read())\n",
                "                families = self.read()\n",
            ),
        ),
        ("tests/test_metrics.py", "tests/test_prometheus.py", "tests/test_pins4_ops_metrics.py"),
    ),
    # draw 4, portal/management/commands/portal_upload.py:266 (finalize)
    Mutant(
        "s10: the upload client's assembly progress shows the assembled bytes as the total",
        "portal/management/commands/portal_upload.py",
        (
            (
                "f\"{assembly.get('total_bytes', '?')} bytes\\n\"",
                "f\"{assembly.get('assembled_bytes', '?')} bytes\\n\"",
            ),
        ),
        ("tests/test_upload_client.py", "tests/test_finalize_async.py"),
    ),
    # draw 5, portal/checks.py:35 (_error)
    Mutant(
        "s10: the portal's system-check errors lose their 'portal.' id prefix",
        "portal/checks.py",
        (
            (
                '    return Error(msg, hint=hint, id=f"portal.{code}")',
                "    return Error(msg, hint=hint, id=code)",
            ),
        ),
        (
            "tests/test_settings.py",
            "tests/test_pins2_ops_checks.py",
            "tests/test_pins4_ops_checks.py",
        ),
    ),
    # draw 6, portal/storage/local_walk.py:52 (open_root)
    Mutant(
        "s10: a missing storage root escapes as a bare FileNotFoundError, not StorageRootMissing",
        "portal/storage/local_walk.py",
        (
            (
                "    except FileNotFoundError:\n        raise StorageRootMissing(root) from None",
                "    except FileExistsError:\n        raise StorageRootMissing(root) from None",
            ),
        ),
        (
            "tests/test_pins2_storage_local.py",
            "tests/test_pins4_storage_local_dirs.py",
            "tests/test_storage.py",
        ),
    ),
    # draw 7, portal/storage/local_in_place.py:57 (_fallocate)
    Mutant(
        "s10: _fallocate forgets to return libc's function: consumed ranges are never punched out",
        "portal/storage/local_in_place.py",
        (
            (
                "ctypes.c_int64, ctypes.c_int64]\n    return function\n",
                "ctypes.c_int64, ctypes.c_int64]\n",
            ),
        ),
        ("tests/test_in_place.py", "tests/test_large_parts_on_disk.py"),
    ),
    # draw 8, portal/health/executor.py:131 (ResultCache.put)
    Mutant(
        "s10: the result cache stamps entries with the monotonic clock: nothing is ever reused",
        "portal/health/executor.py",
        (
            (
                "self._entries[key] = (time.time(), value)",
                "self._entries[key] = (time.monotonic(), value)",
            ),
        ),
        ("tests/test_health.py", "tests/test_pins2_ops_health.py", "tests/test_metrics.py"),
    ),
    # draw 9, portal/services/sessions.py:247 (abort_session)
    Mutant(
        "s10: the session.aborted log line names the file id as the session id",
        "portal/services/sessions.py",
        (
            (
                'aborted by the client",\n            session_id=str(session.pk),',
                'aborted by the client",\n            session_id=str(session.file_id),',
            ),
        ),
        (
            "tests/test_logging_events.py",
            "tests/test_api_sessions.py",
            "tests/test_pins3_upload_logs.py",
        ),
    ),
    # draw 13, portal/services/outbox/dispatch.py:237 (backlog_left)
    Mutant(
        "s10: the outbox backlog left after a run is counted without its cap",
        "portal/services/outbox/dispatch.py",
        (
            (
                '    return waiting.values("status")[:BACKLOG_CAP].count()',
                "    return waiting.count()",
            ),
        ),
        ("tests/test_dispatch.py", "tests/test_outbox.py", "tests/test_status_trend.py"),
    ),
    # draw 17, portal/services/tus_patch.py:174 (_Writer._write)
    Mutant(
        "s10: a PATCH whose tail is gone from storage answers another code than offset_mismatch",
        "portal/services/tus_patch.py",
        (
            (
                'code="offset_mismatch",\n            ) from None\n        except BaseException:',
                'code="tail_missing",\n            ) from None\n        except BaseException:',
            ),
        ),
        (
            "tests/test_tus_edges.py",
            "tests/test_pins3_storage_vanishing.py",
            "tests/test_tus_api.py",
        ),
    ),
    # draw 18, boot/config.py:169 (HttpUrlValue.shown)
    Mutant(
        "s10: a URL's password longer than one character is shown in configuration errors",
        "boot/config.py",
        (
            (
                'return re.sub(r"(//[^/@:]*:)[^/@]*@", r"\\1***@", raw)',
                'return re.sub(r"(//[^/@:]*:)[^/@]@", r"\\1***@", raw)',
            ),
        ),
        ("tests/test_settings.py", "tests/test_pins_ops_boot.py", "tests/test_pins3_ops_boot.py"),
    ),
    # draw 19, portal/admin.py:71 (OutboxEventAdmin.requeue)
    Mutant(
        "s10: the admin's requeue action requeues every failed event, not just the selected ones",
        "portal/admin.py",
        (
            (
                'count = outbox.requeue_failed(ids=queryset.values_list("pk", flat=True))',
                "count = outbox.requeue_failed()",
            ),
        ),
        ("tests/test_admin.py", "tests/test_pins2_ops_admin.py", "tests/test_pins3_ops_admin.py"),
    ),
    # draw 20, portal/health/checks.py:144 (OutboxBacklog.name)
    Mutant(
        "s10: the outbox health check reports under another name than 'outbox'",
        "portal/health/checks.py",
        (('        return "outbox"\n', '        return "outbox_backlog"\n'),),
        ("tests/test_health.py", "tests/test_pins2_ops_health.py", "tests/test_status_page.py"),
    ),
    # draw 21, portal/metrics/views.py:49 (check_access)
    Mutant(
        "s10: metrics with a token while the database is down answer 401 instead of 503",
        "portal/metrics/views.py",
        (
            (
                '                raise Unavailable(\n                    "cannot check the token',
                '                raise Unauthorized(\n                    "cannot check the token',
            ),
        ),
        ("tests/test_metrics_access.py", "tests/test_metrics.py"),
    ),
    # draw 22, portal/services/tokens.py:29 (validated_username)
    Mutant(
        "s10: a username is converted but not validated (length, characters) by its field",
        "portal/services/tokens.py",
        (
            (
                "        return field.clean(username, None)",
                "        return field.to_python(username)",
            ),
        ),
        ("tests/test_tokens.py", "tests/test_commands.py"),
    ),
    # draw 23, portal/services/cleanup/__init__.py:114 (_log_summary)
    Mutant(
        "s10: a skipped cleanup run also logs cleanup.finished",
        "portal/services/cleanup/__init__.py",
        (
            (
                '            dry_run=summary["dry_run"],\n        )\n        return\n',
                '            dry_run=summary["dry_run"],\n        )\n',
            ),
        ),
        (
            "tests/test_cleanup_command.py",
            "tests/test_logging_events.py",
            "tests/test_pins_ops_logs.py",
        ),
    ),
    # draw 24, portal/management/base.py:66 (PortalCommand._checked_execute)
    Mutant(
        "s10: commands that opt out of the settings check are refused for the configuration too",
        "portal/management/base.py",
        (
            (
                "if self.checks_settings and (problems := settings_problems()):",
                "if problems := settings_problems():",
            ),
        ),
        ("tests/test_commands.py", "tests/test_settings.py", "tests/test_logging.py"),
    ),
    # draw 25, portal/services/status/trend.py:179 (trend_context)
    Mutant(
        "s10: the status page's trend loses the outbox backlog chart",
        "portal/services/status/trend.py",
        (("        **backlog_chart(backlog_per_run()),\n", ""),),
        (
            "tests/test_status_trend.py",
            "tests/test_status_page.py",
            "tests/test_pins4_ops_trend.py",
        ),
    ),
    # draw 27, portal/services/cleanup/prune.py:63 (_prune_sessions)
    Mutant(
        "s10: prune also takes sessions whose file is stored, deleting stored files",
        "portal/services/cleanup/prune.py",
        (("        .exclude(file__status=IngestFile.Status.STORED)\n", ""),),
        (
            "tests/test_cleanup.py",
            "tests/test_cleanup_command.py",
            "tests/test_pins4_jobs_cleanup.py",
        ),
    ),
    # draw 28, portal/storage/s3_backend.py:112 (S3Backend._copy_parts)
    Mutant(
        "s10: the last part the saved hash covers counts as read: its S3 copy goes unchecked",
        "portal/storage/s3_backend.py",
        (("read_already = number > hashed", "read_already = number >= hashed"),),
        (
            "tests/test_file_hash.py",
            "tests/test_finalize_async.py",
            "tests/test_pins2_storage_s3.py",
        ),
    ),
    # draw 29, portal/storage/__init__.py:115 (new_final_key)
    Mutant(
        "s10: final keys are sharded by minute instead of month",
        "portal/storage/__init__.py",
        (('return f"{now:%Y/%m/%d}/{uuid', 'return f"{now:%Y/%M/%d}/{uuid'),),
        ("tests/test_storage.py", "tests/test_api_finalize.py", "tests/test_pins_store.py"),
    ),
    # draw 31, portal/management/commands/portal_upload.py:353 (Command.handle)
    Mutant(
        "s10: the upload client compares the server's hex sha256 with the local raw digest",
        "portal/management/commands/portal_upload.py",
        (
            (
                'local = hashlib.file_digest(local_file, "sha256").hexdigest()',
                'local = hashlib.file_digest(local_file, "sha256").digest()',
            ),
        ),
        ("tests/test_upload_client.py", "tests/test_pins_jobs_upload.py"),
    ),
    # draw 32, portal/services/guards.py:86 (ensure_room)
    Mutant(
        "s10: room is checked only for empty writes, never for real ones",
        "portal/services/guards.py",
        (
            (
                "    if not size_bytes:\n        return\n    free = storage.free_bytes(name)",
                "    if size_bytes:\n        return\n    free = storage.free_bytes(name)",
            ),
        ),
        ("tests/test_full_volume.py", "tests/test_guards.py", "tests/test_pins3_storage_quotas.py"),
    ),
    # draw 34, portal/services/cleanup/sweep.py:38 (sweep_temp_storage)
    Mutant(
        "s10: multipart uploads are aborted without the grace period",
        "portal/services/cleanup/sweep.py",
        (("_abort_dead_assemblies(run.now - grace, run)", "_abort_dead_assemblies(run.now, run)"),),
        (
            "tests/test_cleanup.py",
            "tests/test_cleanup_command.py",
            "tests/test_pins2_jobs_cleanup.py",
        ),
    ),
    # draw 35, portal/services/chunks.py:40 (receive_part)
    Mutant(
        "s10: a storage outage while storing a part is logged without its session and part",
        "portal/services/chunks.py",
        (
            (
                'with storage_faults("storing a part", **context):',
                'with storage_faults("storing a part"):',
            ),
        ),
        (
            "tests/test_api_faults.py",
            "tests/test_logging_events.py",
            "tests/test_pins3_upload_logs.py",
        ),
    ),
    # draw 36, portal/services/finalize/assembly.py:100 (_build)
    Mutant(
        "s10: an assembly records its multipart upload id on the file's pk, so on no session",
        "portal/services/finalize/assembly.py",
        (
            (
                "lease.record_upload(session.pk, upload_id)",
                "lease.record_upload(session.file_id, upload_id)",
            ),
        ),
        ("tests/test_finalize_lease.py", "tests/test_cleanup.py", "tests/test_finalize_async.py"),
    ),
    # draw 37, portal/services/tus_patch.py:96 (_patch)
    Mutant(
        "s10: a PATCH that completes the upload still sends an Upload-Expires",
        "portal/services/tus_patch.py",
        (
            (
                "    return PatchResult(offset, _open_until(session))\n",
                "    return PatchResult(offset, session.expires_at)\n",
            ),
        ),
        ("tests/test_tus_api.py", "tests/test_tus_portal.py", "tests/test_pins_tus.py"),
    ),
    # draw 38, portal/services/cleanup/prune.py:51 (_close_abandoned_runs)
    Mutant(
        "s10: prune marks runs abandoned as soon as they start, not a day later",
        "portal/services/cleanup/prune.py",
        (
            (
                "dead.filter(started_at__lt=run.now - jobs.ABANDONED_AFTER)",
                "dead.filter(started_at__lt=run.now)",
            ),
        ),
        (
            "tests/test_cleanup.py",
            "tests/test_cleanup_command.py",
            "tests/test_pins4_jobs_cleanup.py",
        ),
    ),
    # draw 40, portal/services/part_sql.py:168 (waiting_parts)
    Mutant(
        "s10: the hash catch-up takes in again the last part the saved hash already covers",
        "portal/services/part_sql.py",
        (
            (
                "AND p.{P.part_number} > s.{S.hashed_parts}",
                "AND p.{P.part_number} >= s.{S.hashed_parts}",
            ),
        ),
        (
            "tests/test_file_hash_catch_up.py",
            "tests/test_file_hash.py",
            "tests/test_pins2_storage_filehash.py",
        ),
    ),
)
