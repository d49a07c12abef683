"""A third independent sample for ``tests/mutants.py``: 30 small slips in the database
gate, the probe lanes, the free-space guards and finalize's room, the walk under a local
root, the HTTP client's deadline, tus and its CORS, the status page, ``portal_upload``'s
token and the idempotency re-check, chosen before the tests were read; the ten that
passed every test then are pinned by tests named in each entry. Same rules as
``tests/mutant_catalog.py``."""

from tests.mutant_catalog import Mutant

_FINALIZE = (
    "tests/test_finalize_room.py",
    "tests/test_finalize_async.py",
    "tests/test_finalize_lease.py",
    "tests/test_api_finalize.py",
)
_GUARDS = ("tests/test_guards.py", "tests/test_full_volume.py", "tests/test_finalize_room.py")
_HTTP = (
    "tests/test_httpclient.py",
    "tests/test_outbox.py",
    "tests/test_outbox_peers.py",
    "tests/test_dispatch.py",
)
_TUS = ("tests/test_tus_api.py", "tests/test_tus_portal.py", "tests/test_tus_queries.py")
_STATUS = ("tests/test_status_page.py", "tests/test_status_trend.py", "tests/test_guards.py")

MUTANTS = (
    # --- the database gate (portal/dbgate.py)
    Mutant(
        "a database failure stamped in the future keeps the gate shut",
        "portal/dbgate.py",
        (
            (
                "if self._trying or 0 <= since < self.retry_seconds:",
                "if self._trying or since < self.retry_seconds:",
            ),
        ),
        ("tests/test_dbgate.py",),
    ),
    Mutant(
        "a failed retry leaves the gate's single flight taken",
        "portal/dbgate.py",
        (
            (
                "was_up, self._failed_at, self._trying = self._failed_at is None, time.time(), "
                "False",
                "was_up, self._failed_at = self._failed_at is None, time.time()",
            ),
        ),
        ("tests/test_dbgate.py",),
    ),
    Mutant(
        "a connection that succeeded does not open the gate",
        "portal/dbgate.py",
        (
            (
                "        gate.succeeded()\n        return self.get_response(request)",
                "        return self.get_response(request)",
            ),
        ),
        ("tests/test_dbgate.py",),
    ),
    # --- probe lanes (portal/health/lanes.py)
    Mutant(
        "a tus PATCH with Content-Length: 0 takes the tus lane",
        "portal/health/lanes.py",
        (('            return value.strip() not in (b"0", b"")', "            return True"),),
        ("tests/test_probe_lanes.py",),
    ),
    Mutant(
        "a probe with a capitalised Content-Length takes the probe lane",
        "portal/health/lanes.py",
        (('marker in b"\\r\\n" + headers.lower() for', 'marker in b"\\r\\n" + headers for'),),
        ("tests/test_probe_lanes.py",),
    ),
    # --- free-space guards (portal/services/guards.py)
    Mutant(
        "a write that leaves exactly the reserve free is refused",
        "portal/services/guards.py",
        (("free - size_bytes < reserve:", "free - size_bytes <= reserve:"),),
        _GUARDS,
    ),
    Mutant(
        "a finalize by link (nothing written) is refused on a full volume",
        "portal/services/guards.py",
        (
            (
                "    if not size_bytes:\n        return\n    free = storage.free_bytes(name)",
                "    free = storage.free_bytes(name)",
            ),
        ),
        _GUARDS,
    ),
    Mutant(
        "the new-session guard compares S3's unknown free space",
        "portal/services/guards.py",
        (("        if free is not None and free < minimum:", "        if free < minimum:"),),
        _GUARDS,
    ),
    # --- finalize's room and attempts (portal/services/finalize/)
    Mutant(
        "the room check of a finalize whose part is missing fails the request, not the session",
        "portal/services/finalize/assembly.py",
        (
            (
                "contextlib.suppress(PartCorrupt)",
                "contextlib.suppress(ZeroDivisionError)",
            ),
        ),
        _FINALIZE,
    ),
    Mutant(
        "a finalize refused for room does not keep the session for retries",
        "portal/services/finalize/request.py",
        (
            (
                "        except InsufficientStorage:\n            keep_for_retries(session.pk)\n",
                "        except InsufficientStorage:\n",
            ),
        ),
        _FINALIZE,
    ),
    Mutant(
        "a link refused by the filesystem is copied if the temp volume has room",
        "portal/services/finalize/assembly.py",
        (
            (
                'room=lambda size: guards.ensure_room("final", size)',
                'room=lambda size: guards.ensure_room("temp", size)',
            ),
        ),
        _FINALIZE,
    ),
    Mutant(
        "portal_finalize gives up one attempt early",
        "portal/services/finalize/__init__.py",
        (
            (
                "if session.assembly_attempts > MAX_ATTEMPTS:",
                "if session.assembly_attempts >= MAX_ATTEMPTS:",
            ),
        ),
        _FINALIZE,
    ),
    # --- the walk under a local root (portal/storage/local_walk.py)
    Mutant(
        "a missing storage root is a plain FileNotFoundError, not an outage",
        "portal/storage/local_walk.py",
        (
            (
                "    except FileNotFoundError:\n        raise StorageRootMissing(root) from None",
                "    except ZeroDivisionError:\n        raise StorageRootMissing(root) from None",
            ),
        ),
        ("tests/test_storage_links.py", "tests/test_storage_modes.py", "tests/test_storage.py"),
    ),
    Mutant(
        "a file is opened through a symlink at its name",
        "portal/storage/local_walk.py",
        (("flags | _nofollow() | os.O_CLOEXEC", "flags | os.O_CLOEXEC"),),
        ("tests/test_storage_links.py", "tests/test_storage_modes.py", "tests/test_storage.py"),
    ),
    # --- the HTTP client's deadline (portal/httpclient.py)
    Mutant(
        "an answer is read with a timeout per read, not the exchange's deadline",
        "portal/httpclient.py",
        (("HTTPResponse(_TimedSocket(sock, self.time_left), *args", "HTTPResponse(sock, *args"),),
        _HTTP,
    ),
    Mutant(
        "a call's own timeout is ignored for the connection's",
        "portal/httpclient.py",
        (("seconds = self.timeout if timeout is None else timeout", "seconds = self.timeout"),),
        _HTTP,
    ),
    Mutant(
        "a connection is never taken for reused: its keep-alive race is not retried",
        "portal/httpclient.py",
        (("            self._used = True\n", ""),),
        _HTTP,
    ),
    # --- tus (portal/services/tus*.py, portal/views/tus.py)
    Mutant(
        "the tail counts when it belongs to the last recorded part",
        "portal/services/tus.py",
        (
            (
                "if tus.tail_key and tus.tail_part == done + 1:\n        offset +=",
                "if tus.tail_key and tus.tail_part == done:\n        offset +=",
            ),
        ),
        _TUS,
    ),
    Mutant(
        "an open upload with all parts in reports whole parts past its length",
        "portal/services/tus.py",
        (
            (
                "offset = bytes_in_parts(done, session.chunk_size_bytes, session.total_size_bytes)",
                "offset = done * session.chunk_size_bytes",
            ),
        ),
        _TUS,
    ),
    Mutant(
        "a PATCH that finds the lock taken answers 423 for another owner's upload",
        "portal/services/tus_patch.py",
        (
            (
                "        except locks.LockBusy:\n            get_upload(owner, pk)\n",
                "        except locks.LockBusy:\n",
            ),
        ),
        _TUS,
    ),
    Mutant(
        "HEAD is answered without Cache-Control: no-store",
        "portal/views/tus.py",
        (
            (
                '            if method == "HEAD":\n'
                '                response["Cache-Control"] = "no-store"\n',
                "",
            ),
        ),
        _TUS,
    ),
    Mutant(
        "creation-with-upload answers the PATCH's 204, not 201",
        "portal/views/tus.py",
        (("            response.status_code = 201\n", ""),),
        _TUS,
    ),
    # --- CORS (portal/views/tus.py)
    Mutant(
        "an allowed origin sent in capitals gets no CORS headers",
        "portal/views/tus.py",
        (
            (
                "if not origin or origin.lower() not in settings.PORTAL_CORS_ALLOWED_ORIGINS:",
                "if not origin or origin not in settings.PORTAL_CORS_ALLOWED_ORIGINS:",
            ),
        ),
        _TUS,
    ),
    Mutant(
        "tus answers do not vary on Origin",
        "portal/views/tus.py",
        (('    patch_vary_headers(response, ["Origin"])\n', ""),),
        _TUS,
    ),
    # --- the status page (portal/services/status/)
    Mutant(
        "1024 bytes read as bytes, not 1.0 KiB",
        "portal/services/status/page.py",
        (("if abs(value) < 1024 or unit", "if abs(value) <= 1024 or unit"),),
        _STATUS,
    ),
    Mutant(
        "a volume's used share is its free share",
        "portal/services/status/page.py",
        (("round(100 * (total - free) / total)", "round(100 * free / total)"),),
        _STATUS,
    ),
    Mutant(
        "the current hour's uploads are cached before the hour is over",
        "portal/services/status/trend.py",
        (
            (
                "if hour + timedelta(hours=1) <= now - SETTLED_AFTER",
                "if hour <= now - SETTLED_AFTER",
            ),
        ),
        _STATUS,
    ),
    # --- portal_upload's token (portal/management/token_source.py)
    Mutant(
        "a token file's newline goes into the Authorization header",
        "portal/management/token_source.py",
        (("    return given.strip()\n", "    return given\n"),),
        ("tests/test_upload_token.py", "tests/test_upload_client.py"),
    ),
    Mutant(
        "a token file that only its group may read gets no warning",
        "portal/management/token_source.py",
        (("    if mode & 0o077:", "    if mode & 0o007:"),),
        ("tests/test_upload_token.py", "tests/test_upload_client.py"),
    ),
    # --- the idempotency re-check (portal/services/sessions.py)
    Mutant(
        "a create that waited on the owner's lock does not look for its key again",
        "portal/services/sessions.py",
        (
            (
                "        existing = _by_idempotency_key(owner, key) if key else None\n",
                "        existing = None\n",
            ),
        ),
        ("tests/test_api_sessions.py", "tests/test_guards.py"),
        needs_postgres=True,
    ),
)
