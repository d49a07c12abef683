"""The parts area's mutants of the API's edges: the guards (quotas, free space, storage
faults), the errors' statuses and headers, the views (JSON bodies, 202s, a database
outage) and bearer tokens; see ``tests/mutant_area_parts.py``. Same rules as
``tests/mutant_catalog.py``."""

from tests.mutant_catalog import Mutant

PINS = "tests/test_pins_parts.py"
_SESSIONS = ("tests/test_api_sessions.py", PINS)
_GUARDS = ("tests/test_guards.py", PINS)
_TOKENS = ("tests/test_tokens.py", PINS)

MUTANTS = (
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
)
