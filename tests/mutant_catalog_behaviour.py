"""More mutants for ``tests/mutants.py``: behaviours pinned through the API, a command or
the storage adapter (large unaligned ranges, claims let go, a digest that leaves the
hash usable, the final volume's guard, the lease renewed by progress, a claim batch
filled, a fresh connection's failure not sent again, a row lock that makes others wait,
blocks written at their offsets, the catch-up's order and claims, the sweep of ended
sessions' files, a long answer on a kept connection, which lease runs out first, a
part's room on the temp volume, an InterfaceError at connect, the modes of what is made
in place, a symlink at a file's name; then the edges a private run of 72 candidates in the
storage backends, tokens, sessions, tus and the status page found unpinned: cases of
header values, instants and boundaries, the headers tus and CORS promise, the final key's
layout, a full quota, S3's request limits). Same rules as ``tests/mutant_catalog.py``."""

from tests.mutant_catalog import Mutant

MUTANTS = (
    Mutant(
        "the next hash window starts where the last piece ended, not on a page",
        "portal/storage/local_assembly.py",
        (("        offset = start + length\n", "        offset = offset + length\n"),),
        ("tests/test_large_parts_on_disk.py",),
    ),
    Mutant(
        "a part's blocks go to its offset in the assembly file, not one after another",
        "portal/storage/streams.py",
        (("            offset += len(data)\n", ""),),
        ("tests/test_large_parts_on_disk.py",),
    ),
    Mutant(
        "a catch-up that could not move the hash keeps its claim until it runs out",
        "portal/services/filehash.py",
        (("        if not moved:\n            _release(session_pk, claim)\n", ""),),
        ("tests/test_file_hash_catch_up.py",),
    ),
    Mutant(
        "hexdigest finalizes the resumable hash's own state",
        "portal/storage/sha256state.py",
        (("self._lib.SHA256_Final(digest, copy)", "self._lib.SHA256_Final(digest, self._ctx)"),),
        ("tests/test_sha256state.py",),
    ),
    Mutant(
        "the free-space guard of a new session looks at the temp volume only",
        "portal/services/guards.py",
        (('for name in ("temp", "final"):', 'for name in ("temp",):'),),
        ("tests/test_guards.py",),
    ),
    Mutant(
        "an assembly's progress is recorded without extending its lease",
        "portal/services/finalize/lease.py",
        (
            (
                "assembly_lease_until=lease_until(), assembled_bytes=assembled_bytes",
                "assembled_bytes=assembled_bytes",
            ),
        ),
        ("tests/test_finalize_async.py",),
    ),
    Mutant(
        "a claim takes pending rows only when no expired lease is due",
        "portal/services/outbox/dispatch.py",
        (("if len(events) < batch_size:", "if not events:"),),
        ("tests/test_outbox_claims.py",),
    ),
    Mutant(
        "a failure on a fresh connection is sent again",
        "portal/httpclient.py",
        (("                if not reused:\n                    raise\n", ""),),
        ("tests/test_outbox.py", "tests/test_dispatch.py"),
    ),
    Mutant(
        "the locked session read skips a row another transaction holds",
        "portal/services/part_sql.py",
        (('lock = " FOR UPDATE" if', 'lock = " FOR UPDATE SKIP LOCKED" if'),),
        ("tests/test_part_sql.py",),
        needs_postgres=True,
    ),
    Mutant(
        "the catch-up's look returns parts in the table's order",
        "portal/services/part_sql.py",
        ((" ORDER BY p.{P.part_number} LIMIT %s", " LIMIT %s"),),
        ("tests/test_part_sql.py",),
        needs_postgres=True,
    ),
    Mutant(
        "the hash moves under a claim token older than the one held",
        "portal/services/part_sql.py",
        (
            (
                ' AND {S.hash_claimed_until} = %s",\n            [last,',
                ' AND {S.hash_claimed_until} >= %s",\n            [last,',
            ),
        ),
        ("tests/test_part_sql.py",),
    ),
    Mutant(
        "a session whose hash is not saved looks for parts to catch up",
        "portal/services/chunks.py",
        (("if counted.hash_next_in and filehash.applies(session):", "if counted.hash_next_in:"),),
        ("tests/test_file_hash.py",),
    ),
    Mutant(
        "the sweep keeps an ended session's file until the grace passes",
        "portal/services/cleanup/sweep.py",
        (
            (
                "if item.modified_at < older_than or storage.assembly_session(item.key):",
                "if item.modified_at < older_than:",
            ),
        ),
        ("tests/test_in_place.py",),
    ),
    Mutant(
        "the unread rest of a long answer stays on the kept connection",
        "portal/httpclient.py",
        (("if not response.isclosed() or response.will_close:", "if response.will_close:"),),
        ("tests/test_dispatch.py",),
    ),
    Mutant(
        "portal_finalize takes over the newest expired lease first",
        "portal/services/finalize/lease.py",
        (('.order_by("assembly_lease_until")', '.order_by("-assembly_lease_until")'),),
        ("tests/test_finalize_lease.py",),
    ),
    Mutant(
        "a part's room is checked on the final volume, not the temp one",
        "portal/services/chunks.py",
        (('guards.ensure_room("temp", expected)', 'guards.ensure_room("final", expected)'),),
        ("tests/test_guards.py",),
    ),
    Mutant(
        "an InterfaceError at connect is a 500, not 503 database_unavailable",
        "portal/dbgate.py",
        (
            (
                "if isinstance(exc, (OperationalError, InterfaceError)):",
                "if isinstance(exc, (OperationalError,)):",
            ),
        ),
        ("tests/test_dbgate.py",),
    ),
    Mutant(
        "a new assembly file does not get FILE_UPLOAD_PERMISSIONS",
        "portal/storage/local_in_place.py",
        (
            (
                "                if storage.file_permissions_mode is not None:\n"
                "                    os.fchmod(fd, storage.file_permissions_mode)\n",
                "                pass\n",
            ),
        ),
        ("tests/test_storage_modes.py",),
    ),
    Mutant(
        "a directory the portal makes keeps the umask's mode",
        "portal/storage/local_walk.py",
        (("        if mode is not None:\n            os.chmod(made.fd, mode)\n", ""),),
        ("tests/test_storage_modes.py",),
    ),
    Mutant(
        "ELOOP from O_NOFOLLOW is an outage, not a refused link",
        "portal/storage/local_walk.py",
        (
            (
                "_LINK_ERRNOS = frozenset((errno.ELOOP, errno.EMLINK, errno.ENOTDIR))",
                "_LINK_ERRNOS = frozenset((errno.EMLINK, errno.ENOTDIR))",
            ),
        ),
        ("tests/test_storage_links.py",),
    ),
    # Pinned after a private run of 72 candidates (issue #31, phase 1).
    Mutant(
        "the bearer scheme is matched case-sensitively",
        "portal/auth.py",
        (('if scheme.lower() != "bearer" or not raw:', 'if scheme != "Bearer" or not raw:'),),
        ("tests/test_tokens.py",),
    ),
    Mutant(
        "a session failed during its assembly keeps its lease",
        "portal/services/sessions.py",
        (("            assembly_lease_until=None,\n", ""),),
        ("tests/test_api_finalize.py",),
    ),
    Mutant(
        "an abort of a finalizing session answers 204",
        "portal/services/sessions.py",
        (
            (
                "(UploadSession.Status.FAILED, UploadSession.Status.FINALIZING):",
                "(UploadSession.Status.FAILED,):",
            ),
        ),
        ("tests/test_api_sessions.py",),
    ),
    Mutant(
        "a session still takes parts at the instant it expires",
        "portal/services/sessions.py",
        (
            (
                "if session.expires_at <= (now or timezone.now()):",
                "if session.expires_at < (now or timezone.now()):",
            ),
        ),
        ("tests/test_api_parts.py",),
    ),
    Mutant(
        "a requested part size that makes exactly the most parts is refused",
        "portal/services/sessions.py",
        (
            (
                "if part_count(size_bytes, chunk) > MAX_PARTS:",
                "if part_count(size_bytes, chunk) >= MAX_PARTS:",
            ),
        ),
        ("tests/test_api_sessions.py",),
    ),
    Mutant(
        "Upload-Checksum's algorithm is matched case-sensitively",
        "portal/services/tus.py",
        (("CHECKSUM_ALGORITHMS.get(algorithm.lower())", "CHECKSUM_ALGORITHMS.get(algorithm)"),),
        ("tests/test_tus_edges.py",),
    ),
    Mutant(
        "a tus preflight is not cached by the browser",
        "portal/views/tus.py",
        (('        response["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE\n', ""),),
        ("tests/test_tus_edges.py",),
    ),
    Mutant(
        "an OPTIONS that is no preflight gets the preflight's headers",
        "portal/views/tus.py",
        (
            (
                'if request.method == "OPTIONS" and "Access-Control-Request-Method" in '
                "request.headers:",
                'if request.method == "OPTIONS":',
            ),
        ),
        ("tests/test_tus_edges.py",),
    ),
    Mutant(
        "a tus PATCH answer does not say until when the upload stays open",
        "portal/views/tus.py",
        (
            (
                "    if result.expires_at is not None:\n"
                '        response["Upload-Expires"] = http_date(result.expires_at.timestamp())\n',
                "",
            ),
        ),
        ("tests/test_tus_api.py",),
    ),
    Mutant(
        "a chunked Transfer-Encoding in capitals is not refused",
        "portal/views/tus.py",
        (
            (
                '"chunked" in request.headers.get("Transfer-Encoding", "").lower()',
                '"chunked" in request.headers.get("Transfer-Encoding", "")',
            ),
        ),
        ("tests/test_tus_portal.py",),
    ),
    Mutant(
        "a tus PATCH does not keep the temp volume's reserve",
        "portal/services/tus_patch.py",
        (
            (
                '            guards.ensure_room("temp", length)\n            file_hash',
                "            file_hash",
            ),
        ),
        ("tests/test_guards.py",),
    ),
    Mutant(
        "a tus PATCH that leaves only a tail does not extend the upload's expiry",
        "portal/services/tus_patch.py",
        (
            (
                ").update(expires_at=expires_at, updated_at=now)",
                ").update(updated_at=now)",
            ),
        ),
        ("tests/test_tus_edges.py",),
    ),
    Mutant(
        "a duration of ten or more units keeps its smaller unit",
        "portal/services/status/page.py",
        (
            (
                "if major < 10 and index + 1 < len(DURATION_STEPS):",
                "if major <= 10 and index + 1 < len(DURATION_STEPS):",
            ),
        ),
        ("tests/test_status_page.py",),
    ),
    Mutant(
        "the page says new uploads are refused at exactly the floor, which the guard takes",
        "portal/services/status/page.py",
        (("if refuse and free < refuse:", "if refuse and free <= refuse:"),),
        ("tests/test_guards.py",),
    ),
    Mutant(
        "the page says a job warns after one period, not two as /ready does",
        "portal/services/status/page.py",
        (('"warn_after": duration(2 * schedule)', '"warn_after": duration(schedule)'),),
        ("tests/test_status_page.py",),
    ),
    Mutant(
        "a run's counts list what did nothing",
        "portal/services/status/page.py",
        (("        elif value:\n", "        else:\n"),),
        ("tests/test_status_page.py",),
    ),
    Mutant(
        "the final key has the day before the month",
        "portal/storage/__init__.py",
        (('return f"{now:%Y/%m/%d}/', 'return f"{now:%Y/%d/%m}/'),),
        ("tests/test_api_finalize.py",),
    ),
    Mutant(
        "a full quota (EDQUOT) is an outage, not a full volume",
        "portal/storage/__init__.py",
        (("exc.errno in (errno.ENOSPC, errno.EDQUOT)", "exc.errno in (errno.ENOSPC,)"),),
        ("tests/test_full_volume.py",),
    ),
    Mutant(
        "an S3 delete sends 1,001 keys a request",
        "portal/storage/s3_backend.py",
        (("DELETE_BATCH = 1000", "DELETE_BATCH = 1001"),),
        ("tests/test_storage.py",),
    ),
    Mutant(
        "S3 copies a file of exactly 10,000 parts through the process",
        "portal/storage/s3_backend.py",
        (("total_parts > MAX_COPY_PARTS", "total_parts >= MAX_COPY_PARTS"),),
        ("tests/test_storage_s3_client.py",),
    ),
    Mutant(
        "a saved hash whose struct disagrees with its byte count is resumed",
        "portal/storage/sha256state.py",
        ((" and pending == length % 64", ""),),
        ("tests/test_sha256state.py",),
    ),
)
