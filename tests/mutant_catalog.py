"""The hand-picked mutants ``tests/mutants.py`` runs: each names a careless change, the
file and the exact text it edits, and the tests that should notice. A mutant whose text
has moved is reported ``stale``: update its text here."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    edits: tuple[tuple[str, str], ...]
    tests: tuple[str, ...]
    # Killed only on PostgreSQL (row locks): skipped unless DATABASE_URL names one.
    needs_postgres: bool = False


MUTANTS = (
    Mutant(
        "an S3 copy passes without its ETag matching the part's MD5",
        "portal/storage/s3_assembly.py",
        (
            (
                "if not read_already and not (source.md5 and etag.strip('\"') == source.md5):",
                "if False:",
            ),
        ),
        ("tests/test_file_hash.py", "tests/test_finalize_async.py"),
    ),
    Mutant(
        "a part caught up into the file's hash is not checked against its sha256",
        "portal/storage/backends.py",
        (
            (
                "for chunk in self.checked_chunks(source):",
                "for chunk in self.iter_object(self.temp, source.key, READ_CHUNK_BYTES):",
            ),
        ),
        ("tests/test_file_hash.py", "tests/test_file_hash_catch_up.py"),
    ),
    Mutant(
        "prune forgets rows whose final object could not be deleted",
        "portal/services/cleanup/prune.py",
        (("        if outcome.failed:\n", "        if False:\n"),),
        ("tests/test_cleanup_command.py", "tests/test_cleanup.py"),
    ),
    Mutant(
        "the token lookup takes any token but the one presented",
        "portal/auth.py",
        ((" WHERE t.{t.key_hash} = %s AND", " WHERE t.{t.key_hash} <> %s AND"),),
        ("tests/test_tokens.py",),
    ),
    Mutant(
        "the token lookup forgets that the user must be active",
        "portal/auth.py",
        ((" AND u.{u.is_active} = %s", " AND %s = %s"),),
        ("tests/test_tokens.py",),
    ),
    Mutant(
        "stale step trusts its candidates instead of re-checking the locked rows",
        "portal/services/cleanup/stale.py",
        (
            (
                "if status in UploadSession.OPEN_STATUSES and expires_at < now\n",
                "if True\n",
            ),
        ),
        ("tests/test_cleanup_race.py", "tests/test_cleanup.py"),
    ),
    Mutant(
        "finalize writes the outbox event after its transaction",
        "portal/services/finalize/assembly.py",
        (
            (
                "            enqueue_file_uploaded(file)\n    if locked.status == Status.COMPLETE:",
                "    if locked.status == Status.FINALIZING:\n        enqueue_file_uploaded(file)\n"
                "    if locked.status == Status.COMPLETE:",
            ),
        ),
        ("tests/test_api_finalize.py",),
    ),
    Mutant(
        "an assembly completes a session that is no longer finalizing",
        "portal/services/finalize/assembly.py",
        (("        if locked.status == Status.FINALIZING:\n", "        if True:\n"),),
        ("tests/test_api_finalize.py", "tests/test_finalize_async.py"),
    ),
    Mutant(
        "portal_finalize takes over an assembly whose lock is held",
        "portal/services/finalize/__init__.py",
        (
            (
                '    except locks.LockBusy:\n        return "busy"',
                '    except ZeroDivisionError:\n        return "busy"',
            ),
        ),
        ("tests/test_finalize_async.py",),
    ),
    Mutant(
        "a replayed part with other bytes is accepted",
        "portal/services/chunks.py",
        (("    if recorded != stored.sha256:\n", "    if False:\n"),),
        ("tests/test_api_parts.py",),
    ),
    Mutant(
        "a short part body is stored",
        "portal/services/chunks.py",
        (("    if stored.size != expected:\n", "    if stored.size > expected:\n"),),
        ("tests/test_api_parts.py",),
    ),
    Mutant(
        "orphans clear keys whose deletion failed",
        "portal/services/cleanup/orphans.py",
        (
            (
                "gone = [pk for key in outcome.deleted for pk in by_key[key]]",
                "gone = [pk for pks in by_key.values() for pk in pks]",
            ),
        ),
        ("tests/test_cleanup_command.py", "tests/test_cleanup.py"),
    ),
    Mutant(
        "sweep deletes tracked objects too",
        "portal/services/cleanup/sweep.py",
        (("    return [key for key in keys if key not in tracked]", "    return list(keys)"),),
        ("tests/test_cleanup.py",),
    ),
    Mutant(
        "a busy lock is taken anyway",
        "portal/locks.py",
        (("            raise LockBusy(name) from None\n", "            pass\n"),),
        ("tests/test_locks.py", "tests/test_cleanup_command.py"),
    ),
    Mutant(
        "an outcome is recorded without holding the lease",
        "portal/services/outbox/dispatch.py",
        (
            (
                "pk__in=pks, status=OutboxEvent.Status.SENDING, next_attempt_at=claim.lease_until",
                "pk__in=pks",
            ),
        ),
        ("tests/test_outbox.py",),
    ),
    Mutant(
        "an event gets one attempt more than the setting allows",
        "portal/services/outbox/dispatch.py",
        (
            (
                "    if attempts >= config.max_attempts:\n",
                "    if attempts > config.max_attempts:\n",
            ),
        ),
        ("tests/test_outbox.py", "tests/test_dispatch.py"),
    ),
    Mutant(
        "a failed readiness check answers 200",
        "portal/health/views.py",
        (
            (
                "response = JsonResponse(body, status=503 if failed else 200)",
                "response = JsonResponse(body, status=200)",
            ),
        ),
        ("tests/test_health.py",),
    ),
    Mutant(
        "bearer tokens are not redacted",
        "portal/observability.py",
        (
            (
                '(re.compile(r"(?i)(\\bbearer\\s+)[^\\s\\"\',;]+"), r"\\1" + REDACTED),\n',
                "",
            ),
        ),
        ("tests/test_logging.py",),
    ),
    Mutant(
        "a setting above its upper bound is accepted",
        "boot/config.py",
        (
            (
                "        if self.max_value is not None and number > self.max_value:\n",
                "        if False:\n",
            ),
        ),
        ("tests/test_settings.py", "tests/reliability/test_settings_garbage.py"),
    ),
    Mutant(
        "an idempotency key reused for another file returns the first session",
        "portal/services/sessions.py",
        (("    if differs:\n        raise Conflict(", "    if False:\n        raise Conflict("),),
        ("tests/test_api_sessions.py",),
    ),
    Mutant(
        "finalize on local disk does not check a part's sha256",
        "portal/storage/local_assembly.py",
        (
            (
                "size).hexdigest() != source.sha256:",
                "size).hexdigest() != source.sha256 and False:",
            ),
        ),
        ("tests/test_api_finalize.py", "tests/test_storage.py", "tests/test_in_place.py"),
    ),
    Mutant(
        "a streamed assembly does not check a part's sha256",
        "portal/storage/backends.py",
        (("digest.hexdigest() != source.sha256", "False"),),
        ("tests/test_storage.py",),
    ),
    Mutant(
        "a part already recorded is written into its range again",
        "portal/services/chunks.py",
        (("    return place, not recorded", "    return place, True"),),
        ("tests/test_in_place.py",),
    ),
    Mutant(
        "a part whose commit may have gone through gives its range's blocks back",
        "portal/services/chunks.py",
        (("        except ApiError:\n", "        except BaseException:\n"),),
        ("tests/test_in_place.py",),
    ),
    Mutant(
        "a catch-up claims the session for a part the hash has taken in",
        "portal/services/part_sql.py",
        (
            (
                ' AND {S.hashed_parts} = %s"\n            f" AND ({claim}',
                ' AND {S.hashed_parts} >= %s"\n            f" AND ({claim}',
            ),
        ),
        ("tests/test_file_hash_catch_up.py", "tests/test_part_sql.py"),
    ),
    Mutant(
        "a catch-up keeps its claim after moving the hash",
        "portal/services/part_sql.py",
        (
            (
                "SET {S.hash_claimed_until} = NULL, {S.hashed_parts} = %s,",
                "SET {S.hashed_parts} = %s,",
            ),
        ),
        ("tests/test_file_hash_catch_up.py", "tests/test_part_sql.py"),
    ),
    Mutant(
        "a catch-up tries to claim a session it saw held",
        "portal/services/filehash.py",
        (("        if held:\n", "        if False:\n"),),
        ("tests/test_file_hash.py", "tests/test_file_hash_catch_up.py"),
    ),
    Mutant(
        "a catch-up hashes one part a look, not the run that is in",
        "portal/services/filehash.py",
        (
            (
                "        run.append((number, source))\n",
                "        run.append((number, source))\n        break\n",
            ),
        ),
        ("tests/test_file_hash.py", "tests/test_file_hash_catch_up.py"),
    ),
    Mutant(
        "a catch-up's hash moves past a part it could not hash",
        "portal/services/filehash.py",
        (("            return hashed, read + source.size, True", "            continue"),),
        ("tests/test_file_hash.py", "tests/test_file_hash_catch_up.py"),
    ),
    Mutant(
        "a part behind a missing one looks for parts to hash",
        "portal/services/chunks.py",
        (("    return part_number == needed or needed in recorded", "    return True"),),
        ("tests/test_file_hash.py", "tests/test_file_hash_catch_up.py"),
    ),
    Mutant(
        "parts a bounded catch-up left wait for finalize",
        "portal/services/chunks.py",
        (
            (
                "    return part_number == needed or needed in recorded",
                "    return part_number == needed",
            ),
        ),
        ("tests/test_file_hash.py", "tests/test_file_hash_catch_up.py"),
    ),
    Mutant(
        "a catch-up lets go of another request's claim",
        "portal/services/part_sql.py",
        (
            (
                ' WHERE {S.id} = %s AND {S.hash_claimed_until} = %s",',
                ' WHERE {S.id} = %s",\n        [session_pk(pk)] or',
            ),
        ),
        ("tests/test_part_sql.py", "tests/test_file_hash_catch_up.py"),
    ),
    Mutant(
        "a part is counted without the bytes it brought",
        "portal/services/part_sql.py",
        (
            (
                'f"{S.bytes_received} = {S.bytes_received} + %s",',
                'f"{S.bytes_received} = {S.bytes_received} + 0 * %s",',
            ),
        ),
        ("tests/test_part_sql.py", "tests/test_api_parts.py"),
    ),
    Mutant(
        "a catch-up that fails keeps its claim until it runs out",
        "portal/services/filehash.py",
        (
            (
                "            _release(session_pk, claim)  # others need not wait",
                "            pass  # ",
            ),
        ),
        ("tests/test_file_hash_catch_up.py",),
    ),
    Mutant(
        "a part that took the hash on does not see that the next part is in",
        "portal/services/chunks.py",
        (
            (
                "numbers = {part_number, part_number + 1, session.hashed_parts + 1}",
                "numbers = {part_number, session.hashed_parts + 1}",
            ),
        ),
        ("tests/test_file_hash_catch_up.py",),
    ),
    Mutant(
        "a part's session lookup loads the whole row and its file",
        "portal/services/chunks.py",
        (("get_session(owner, session_id, PART_FIELDS)", "get_session(owner, session_id)"),),
        ("tests/test_api_parts.py",),
    ),
    Mutant(
        "the sweep deletes an active session's assembly file",
        "portal/services/cleanup/sweep.py",
        (("if owners[key] in active)", "if False)"),),
        ("tests/test_in_place.py",),
    ),
    Mutant(
        "finalize links an assembly file shorter than its parts",
        "portal/storage/local_assembly.py",
        (("        if size != offsets[-1]:\n", "        if False:\n"),),
        ("tests/test_in_place.py",),
    ),
)
