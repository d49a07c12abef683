"""The parts area's mutants (issue #31, helper ``parts``): careless changes to the JSON
upload API's sessions and parts and what they rest on (``portal/parts.py``, ``part_sql``,
``filehash``), written function by function; each names the test files that kill it. The
rest of the area: ``mutant_area_parts_api.py`` (guards, errors, views, tokens) and
``mutant_area_parts_finalize.py``. Same rules as ``tests/mutant_catalog.py``."""

from tests.mutant_catalog import Mutant

PINS = "tests/test_pins_parts.py"
_SESSIONS = ("tests/test_api_sessions.py", PINS)
_PARTS = ("tests/test_api_parts.py", PINS)
_SQL = ("tests/test_part_sql.py", PINS)
_HASH = ("tests/test_file_hash.py", "tests/test_file_hash_catch_up.py", PINS)

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
        ("tests/test_tus_portal.py", "tests/test_api_parts.py"),
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
