"""The parts area's mutants (issue #31, helper ``parts``): careless changes to the JSON
upload API (sessions, parts, finalize, guards, errors, tokens) and what they rest on
(``portal/parts.py``, ``part_sql``, ``filehash``, the finalize lease), written function by
function; each names the test files that kill it. Same rules as ``tests/mutant_catalog.py``."""

from tests.mutant_catalog import Mutant

PINS = "tests/test_pins_parts.py"
_SESSIONS = ("tests/test_api_sessions.py", PINS)
_PARTS = ("tests/test_api_parts.py", PINS)
_GUARDS = ("tests/test_guards.py", PINS)
_SQL = ("tests/test_part_sql.py", PINS)
_HASH = ("tests/test_file_hash.py", "tests/test_file_hash_catch_up.py", PINS)
_FINALIZE = ("tests/test_api_finalize.py", PINS)
_LEASE = ("tests/test_finalize_lease.py", PINS)
_TOKENS = ("tests/test_tokens.py", PINS)

MUTANTS = (
    # --- sessions (portal/services/sessions.py)
    Mutant(
        "parts: a session's time to live is counted in minutes",
        "portal/services/sessions.py",
        (
            (
                "timedelta(hours=settings.PORTAL_SESSION_TTL_HOURS)",
                "timedelta(minutes=settings.PORTAL_SESSION_TTL_HOURS)",
            ),
        ),
        _SESSIONS,
    ),
    Mutant(
        "parts: session.created logs the part size as the file's size",
        "portal/services/sessions.py",
        (
            (
                "        size_bytes=session.total_size_bytes,\n        total_parts",
                "        size_bytes=session.chunk_size_bytes,\n        total_parts",
            ),
        ),
        _SESSIONS,
    ),
    Mutant(
        "parts: a retry with another content type gets the first session",
        "portal/services/sessions.py",
        (('        "content_type": session.file.content_type,\n        "chunk', '        "chunk'),),
        _SESSIONS,
    ),
    Mutant(
        "parts: a filename of exactly the most characters is refused",
        "portal/services/sessions.py",
        (("    if len(value) > max_chars:", "    if len(value) >= max_chars:"),),
        _SESSIONS,
    ),
    Mutant(
        "parts: a lone surrogate in a filename is accepted",
        "portal/services/sessions.py",
        (('in ("Cc", "Cs") for char', 'in ("Cc",) for char'),),
        _SESSIONS,
    ),
    Mutant(
        "parts: a content type with a space in its type is accepted",
        "portal/services/sessions.py",
        ((' or not subtype.strip() or " " in kind:', " or not subtype.strip():"),),
        _SESSIONS,
    ),
    Mutant(
        "parts: the default part size is not held within the bounds",
        "portal/services/sessions.py",
        (
            (
                "        default = min(max(settings.PORTAL_CHUNK_SIZE, low), high)\n",
                "        default = settings.PORTAL_CHUNK_SIZE\n",
            ),
        ),
        _SESSIONS,
    ),
    Mutant(
        "parts: a grown default part size may pass the largest part size",
        "portal/services/sessions.py",
        (
            (
                "return min(max(default, math.ceil(size_bytes / MAX_PARTS)), high)",
                "return max(default, math.ceil(size_bytes / MAX_PARTS))",
            ),
        ),
        _SESSIONS,
    ),
    Mutant(
        "parts: an empty idempotency key is refused",
        "portal/services/sessions.py",
        (
            (
                '    if value is None or value == "":\n        return ""',
                '    if value is None:\n        return ""',
            ),
        ),
        _SESSIONS,
    ),
    Mutant(
        "parts: a session that failed at finalize can be aborted",
        "portal/services/sessions.py",
        (
            (
                "    if session.status in (UploadSession.Status.FAILED,"
                " UploadSession.Status.FINALIZING):",
                "    if session.status == UploadSession.Status.FINALIZING:",
            ),
        ),
        _SESSIONS,
    ),
    Mutant(
        "parts: an ended session gets no finished_at",
        "portal/services/sessions.py",
        (
            (
                "            finished_at=now,\n            updated_at=now,\n"
                "            assembly_lease_until=None,",
                "            updated_at=now,\n            assembly_lease_until=None,",
            ),
        ),
        _SESSIONS,
    ),
    Mutant(
        "parts: a long failure reason is cut at 100 characters",
        "portal/services/sessions.py",
        (("failure_reason=reason[:255],", "failure_reason=reason[:100],"),),
        (*_SESSIONS, "tests/test_api_finalize.py"),
    ),
    Mutant(
        "parts: the file's payload never says when it was stored",
        "portal/services/sessions.py",
        (
            (
                '"stored_at": file.stored_at.isoformat() if file.stored_at else None,',
                '"stored_at": None,',
            ),
        ),
        (*_SESSIONS, "tests/test_api_finalize.py"),
    ),
    Mutant(
        "parts: a session's payload names the file by its content type",
        "portal/services/sessions.py",
        (
            (
                '        "filename": session.file.original_filename,\n'
                '        "size_bytes": session.total_size_bytes,\n        "chunk',
                '        "filename": session.file.content_type,\n'
                '        "size_bytes": session.total_size_bytes,\n        "chunk',
            ),
        ),
        _SESSIONS,
    ),
    Mutant(
        "parts: a finalizing session's status counts the attempts from one too many",
        "portal/services/sessions.py",
        (('"attempts": session.assembly_attempts,', '"attempts": session.assembly_attempts + 1,'),),
        (*_SESSIONS, "tests/test_finalize_async.py"),
    ),
    # --- parts (portal/services/chunks.py)
    Mutant(
        "parts: a body longer than its part is cut to the part, not refused",
        "portal/services/chunks.py",
        (("body = Body(stream, expected + 1, [])", "body = Body(stream, expected, [])"),),
        (*_PARTS, "tests/test_file_hash.py"),
    ),
    Mutant(
        "parts: the last part's receipt says a whole part's size",
        "portal/services/chunks.py",
        (
            (
                '        "size_bytes": part_size(part_number, session.chunk_size_bytes,'
                " session.total_size_bytes),",
                '        "size_bytes": session.chunk_size_bytes,',
            ),
        ),
        _PARTS,
    ),
    Mutant(
        "parts: a receipt's total_parts is the count of parts received",
        "portal/services/chunks.py",
        (
            (
                '        "total_parts": session.total_parts,',
                '        "total_parts": session.completed_parts,',
            ),
        ),
        _PARTS,
    ),
    Mutant(
        "parts: a replay to a closed session answers 200",
        "portal/services/chunks.py",
        (
            (
                "            raise session_not_found()\n        ensure_open(locked)\n",
                "            raise session_not_found()\n",
            ),
        ),
        _PARTS,
    ),
    Mutant(
        "parts: a part for a session that closed while it streamed is 404",
        "portal/services/chunks.py",
        (
            (
                "    if session is not None:\n        ensure_open(session, now)",
                "    if False:\n        ensure_open(session, now)",
            ),
        ),
        _PARTS,
    ),
    Mutant(
        "parts: a part recorded with a TTL twice the setting",
        "portal/services/chunks.py",
        (
            (
                "    expires_at = now + ttl()\n    for number",
                "    expires_at = now + 2 * ttl()\n    for number",
            ),
        ),
        _PARTS,
    ),
    Mutant(
        "parts: part.received logs the part's declared size field as its number",
        "portal/services/chunks.py",
        (
            (
                "        part_number=part_number,\n        size_bytes=stored.size,",
                "        part_number=part_number,\n        size_bytes=part_number,",
            ),
        ),
        _PARTS,
    ),
    Mutant(
        "parts: a lying Content-Length over the part is 400 not 413",
        "portal/services/chunks.py",
        (("            if declared > expected\n", "            if declared > expected + 1\n"),),
        _PARTS,
    ),
    Mutant(
        "parts: an empty Content-Length is read as a bad number, not a missing one",
        "portal/services/chunks.py",
        (('    if content_length in (None, ""):', "    if content_length is None:"),),
        _PARTS,
    ),
    Mutant(
        "parts: a body broken off is reported as merely short",
        "portal/services/chunks.py",
        (("    if body.broken and body.broken != Body.ENDED:", "    if False:"),),
        (*_PARTS, "tests/test_file_hash.py"),
    ),
    Mutant(
        # Not "return sha256" there: the row's sha256 is "" on that path (equivalent).
        "parts: a replay of a tus part whose bytes are gone is an error, not a conflict",
        "portal/services/chunks.py",
        (
            (
                '    except storage.SourceMismatch:\n        return ""',
                '    except storage.StorageFull:\n        return ""',
            ),
        ),
        _PARTS,
    ),
    Mutant(
        "parts: the bytes of all parts run past the file's size",
        "portal/parts.py",
        (("    return min(parts * chunk, size)", "    return parts * chunk"),),
        ("tests/test_parts.py", *_HASH),
    ),
    Mutant(
        "parts: received ranges join numbers two apart",
        "portal/parts.py",
        (("if spans and number == spans[-1][1] + 1:", "if spans and number <= spans[-1][1] + 2:"),),
        ("tests/test_parts.py", *_SESSIONS),
    ),
    # --- the part path's SQL (portal/services/part_sql.py)
    Mutant(
        "parts: a part counts on a session at the instant it expires",
        "portal/services/part_sql.py",
        (
            (
                ' AND {_IS_OPEN} AND {S.expires_at} > %s",',
                ' AND {_IS_OPEN} AND {S.expires_at} >= %s",',
            ),
        ),
        (*_SQL, "tests/test_api_parts.py"),
    ),
    Mutant(
        "parts: a claim that runs out this instant still holds the session",
        "portal/services/part_sql.py",
        ((" AND ({claim} IS NULL OR {claim} < %s)", " AND ({claim} IS NULL OR {claim} <= %s)"),),
        (*_SQL, "tests/test_file_hash_catch_up.py"),
    ),
    Mutant(
        "parts: the catch-up looks at parts whose temp object is gone",
        "portal/services/part_sql.py",
        ((" AND p.{P.temp_key} <> '' ORDER BY", " ORDER BY"),),
        (*_SQL, *_HASH),
    ),
    Mutant(
        "parts: a part counted on a session sets it back to init",
        "portal/services/part_sql.py",
        (
            (
                "params = [size, str(UploadSession.Status.IN_PROGRESS),",
                "params = [size, str(UploadSession.Status.INIT),",
            ),
        ),
        (*_SQL, "tests/test_api_parts.py"),
    ),
    # --- guards (portal/services/guards.py)
    Mutant(
        "parts: a session that expires this instant still counts against the quotas",
        "portal/services/guards.py",
        (('f"{prefix}expires_at__gt": now', 'f"{prefix}expires_at__gte": now'),),
        _GUARDS,
    ),
    Mutant(
        "parts: a finalizing session does not count against the quotas",
        "portal/services/guards.py",
        (
            (
                '    ) | Q(**{f"{prefix}status": UploadSession.Status.FINALIZING})',
                "    ) | Q(pk__in=[])",
            ),
        ),
        (*_GUARDS, "tests/test_cleanup.py"),
    ),
    Mutant(
        "parts: the pending-bytes quota refuses a session that takes it exactly to the limit",
        "portal/services/guards.py",
        (
            (
                "if limit and pending + size_bytes > limit:",
                "if limit and pending + size_bytes >= limit:",
            ),
        ),
        _GUARDS,
    ),
    Mutant(
        "parts: the open-sessions quota lets one more session in",
        "portal/services/guards.py",
        (("if limit and count + 1 > limit:", "if limit and count > limit:"),),
        _GUARDS,
    ),
    Mutant(
        "parts: a volume with exactly the minimum free refuses new sessions",
        "portal/services/guards.py",
        (
            (
                "        if free is not None and free < minimum:",
                "        if free is not None and free <= minimum:",
            ),
        ),
        _GUARDS,
    ),
    Mutant(
        "parts: a full storage answers 503 like an outage",
        "portal/services/guards.py",
        (("        if isinstance(exc, storage.StorageFull):", "        if False:"),),
        (*_GUARDS, "tests/test_full_volume.py"),
    ),
    Mutant(
        "parts: a storage outage is logged without the cause's type",
        "portal/services/guards.py",
        (("            error_type=type(cause).__name__,\n", ""),),
        (*_GUARDS, "tests/test_api_faults.py"),
    ),
    Mutant(
        "parts: a refused link is logged at warning level",
        "portal/services/guards.py",
        (("level=logging.ERROR if refused else logging.WARNING,", "level=logging.WARNING,"),),
        (*_GUARDS, "tests/test_storage_links.py"),
    ),
    # --- errors (portal/services/errors.py)
    Mutant(
        "parts: a 503 asks for a retry after 30 seconds",
        "portal/services/errors.py",
        (("    retry_after_seconds = 5\n", "    retry_after_seconds = 30\n"),),
        ("tests/test_api_faults.py", PINS),
    ),
    Mutant(
        "parts: an error's details replace its code and message",
        "portal/services/errors.py",
        (
            (
                'return {"error": {"code": self.code, "message": self.message, **self.details}}',
                'return {"error": {**self.details}}',
            ),
        ),
        (*_GUARDS, "tests/test_api_finalize.py"),
    ),
    Mutant(
        "parts: a quota answers 403",
        "portal/services/errors.py",
        (("    status = 429\n", "    status = 403\n"),),
        _GUARDS,
    ),
    # --- the views (portal/views/uploads.py)
    Mutant(
        "parts: a database outage is a 500",
        "portal/views/uploads.py",
        (
            (
                "    except (OperationalError, InterfaceError) as exc:",
                "    except InterfaceError as exc:",
            ),
        ),
        ("tests/test_api_faults.py", PINS),
    ),
    Mutant(
        "parts: a JSON body of exactly the most bytes is refused",
        "portal/views/uploads.py",
        (("or int(length) > MAX_JSON_BYTES:", "or int(length) >= MAX_JSON_BYTES:"),),
        _SESSIONS,
    ),
    Mutant(
        "parts: an empty create body is refused as invalid JSON",
        "portal/views/uploads.py",
        (
            (
                'json.loads(request.read(MAX_JSON_BYTES + 1) or b"{}")',
                "json.loads(request.read(MAX_JSON_BYTES + 1))",
            ),
        ),
        _SESSIONS,
    ),
    Mutant(
        "parts: a 202 finalize asks for a poll after 20 seconds",
        "portal/views/uploads.py",
        (('    response["Retry-After"] = "2"', '    response["Retry-After"] = "20"'),),
        ("tests/test_api_finalize.py", "tests/test_finalize_async.py", PINS),
    ),
    Mutant(
        "parts: a finalize done since its wait ended answers 202 complete",
        "portal/views/uploads.py",
        (('    if status["status"] == "complete":', "    if False:"),),
        ("tests/test_api_finalize.py", "tests/test_finalize_async.py", PINS),
    ),
    Mutant(
        "parts: an abort answers 200",
        "portal/views/uploads.py",
        (("    return HttpResponse(status=204)", "    return HttpResponse(status=200)"),),
        _SESSIONS,
    ),
    # --- tokens (portal/auth.py)
    Mutant(
        "parts: a header with the scheme alone passes the scheme check",
        "portal/auth.py",
        (('    if scheme.lower() != "bearer" or not raw:', '    if scheme.lower() != "bearer":'),),
        _TOKENS,
    ),
    Mutant(
        "parts: a token of another purpose is let in",
        "portal/auth.py",
        (("    if token.purpose != purpose:", "    if False:"),),
        _TOKENS,
    ),
    Mutant(
        "parts: a used token's last use is never written again",
        "portal/auth.py",
        (
            (
                "Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale)",
                "Q(last_used_at__isnull=True)",
            ),
        ),
        _TOKENS,
    ),
    # --- finalize (portal/services/finalize/)
    Mutant(
        "parts: a finalize's missing parts list only the first",
        "portal/services/finalize/assembly.py",
        (
            (
                '"missing_part_numbers": missing[:MAX_LISTED_MISSING],',
                '"missing_part_numbers": missing[:1],',
            ),
        ),
        _FINALIZE,
    ),
    Mutant(
        "parts: a part without a temp object is taken for a missing one",
        "portal/services/finalize/assembly.py",
        (
            (
                "        if not temp_key:\n            raise PartCorrupt",
                "        if False:\n            raise PartCorrupt",
            ),
        ),
        (*_FINALIZE, "tests/test_finalize_room.py"),
    ),
    Mutant(
        "parts: file.stored logs the declared size, not the stored one",
        "portal/services/finalize/assembly.py",
        (
            (
                "        size_bytes=stored.size,\n        sha256=stored.sha256,",
                "        size_bytes=session.chunk_size_bytes,\n        sha256=stored.sha256,",
            ),
        ),
        _FINALIZE,
    ),
    Mutant(
        "parts: a finalize's lease runs for six seconds",
        "portal/services/finalize/lease.py",
        (("LEASE_SECONDS = 60\n", "LEASE_SECONDS = 6\n"),),
        (*_LEASE, "tests/test_finalize_async.py"),
    ),
    Mutant(
        "parts: a lease that runs out this instant is taken over",
        "portal/services/finalize/lease.py",
        (
            (
                "filter(status=Status.FINALIZING, assembly_lease_until__lt=now)\n",
                "filter(status=Status.FINALIZING, assembly_lease_until__lte=now)\n",
            ),
        ),
        _LEASE,
    ),
    Mutant(
        "parts: a lease handed back after an outage counts the attempt",
        "portal/services/finalize/lease.py",
        (('        fields["assembly_attempts"] = F("assembly_attempts") - 1\n', "        pass\n"),),
        (*_LEASE, "tests/test_finalize_room.py", "tests/test_api_faults.py"),
    ),
    Mutant(
        "parts: a new finalize keeps the bytes assembled by the last attempt",
        "portal/services/finalize/lease.py",
        (("                assembled_bytes=0,\n", ""),),
        (*_LEASE, "tests/test_finalize_async.py"),
    ),
    Mutant(
        "parts: a failed session without a reason answers 410 part_corrupt",
        "portal/services/finalize/request.py",
        (
            (
                "    if session.status == Status.FAILED and session.failure_reason:",
                "    if session.status == Status.FAILED:",
            ),
        ),
        (*_FINALIZE, "tests/test_finalize_async.py"),
    ),
    Mutant(
        "parts: keeping a session for retries revives an expired one",
        "portal/services/finalize/request.py",
        (("                expires_at__gt=now,\n", ""),),
        ("tests/test_finalize_room.py", PINS),
    ),
    Mutant(
        "parts: portal_finalize counts a session it failed as completed",
        "portal/services/finalize/__init__.py",
        (
            (
                '    except Gone:\n        return "failed"',
                '    except Gone:\n        return "completed"',
            ),
        ),
        (*_LEASE, "tests/test_finalize_async.py"),
    ),
    Mutant(
        "parts: portal_finalize retries an outage in the same run",
        "portal/services/finalize/__init__.py",
        (("            if session_pk in tried:", "            if False:"),),
        _LEASE,  # its own tests: test_finalize_room would loop forever,
    ),
    Mutant(
        "parts: a late takeover of a complete session is refused as gone",
        "portal/services/finalize/assembly.py",
        (
            (
                "    if session.status == Status.COMPLETE:\n        return session.file\n",
                "",
            ),
        ),
        _FINALIZE,
    ),
    Mutant(
        "parts: an open session is assembled without a finalize",
        "portal/services/finalize/assembly.py",
        (
            (
                "    if session.status != Status.FINALIZING:\n        ensure_open(session)  #",
                "    if session.is_terminal:\n        ensure_open(session)  #",
            ),
        ),
        _FINALIZE,
    ),
    Mutant(
        "parts: an assembly that lost the race deletes the winner's final object",
        "portal/services/finalize/assembly.py",
        (
            (
                "    if locked.status == Status.COMPLETE:\n"
                "        return IngestFile.objects.get(pk=file.pk)\n",
                "",
            ),
        ),
        _FINALIZE,
    ),
    Mutant(
        "parts: a replay whose session was pruned meanwhile is a 500",
        "portal/services/chunks.py",
        (
            (
                "        if locked is None:\n            raise session_not_found()\n"
                "        ensure_open(locked)",
                "        ensure_open(locked)",
            ),
        ),
        _PARTS,
    ),
    Mutant(
        "parts: a token without a name shows no name in the admin",
        "portal/models.py",
        (("{self.name or 'unnamed'}", "{self.name}"),),
        ("tests/test_models.py", "tests/test_admin.py", PINS),
    ),
    Mutant(
        "parts: session.aborted names the session where the file belongs",
        "portal/services/sessions.py",
        (
            (
                "session_id=str(session.pk),\n            file_id=str(session.file_id),",
                "session_id=str(session.pk),\n            file_id=str(session.pk),",
            ),
        ),
        _SESSIONS,
    ),
    Mutant(
        "parts: every abort of an aborted session is logged again",
        "portal/services/sessions.py",
        (("    if aborted:\n        log_event(", "    if True:\n        log_event("),),
        _SESSIONS,
    ),
)
