"""The parts area's mutants of finalize (``portal/services/finalize/``) and the models'
names: the second half of ``tests/mutant_area_parts.py`` (a module stays under 400 lines).
Same rules as ``tests/mutant_catalog.py``."""

from tests.mutant_catalog import Mutant

LEASE = "tests/test_finalize_lease.py"
_FINALIZE = ("tests/test_api_finalize.py", LEASE)
_LEASE = (LEASE,)

MUTANTS = (
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
        (LEASE, "tests/test_finalize_async.py"),
    ),
    # Left out as equivalent: "a lease that runs out this instant is taken over" (``__lt``
    # to ``__lte`` in claim_expired's look): its conditional UPDATE re-checks ``__lt``, so
    # the same instant is still not claimed.
    Mutant(
        "parts: a lease handed back after an outage counts the attempt",
        "portal/services/finalize/lease.py",
        (('        fields["assembly_attempts"] = F("assembly_attempts") - 1\n', "        pass\n"),),
        (LEASE, "tests/test_finalize_room.py", "tests/test_api_faults.py"),
    ),
    Mutant(
        "parts: a new finalize keeps the bytes assembled by the last attempt",
        "portal/services/finalize/lease.py",
        (("                assembled_bytes=0,\n", ""),),
        (LEASE, "tests/test_finalize_async.py"),
    ),
    Mutant(
        "parts: a finalize waiting on a session failed elsewhere answers 202, not 410",
        "portal/services/finalize/request.py",
        (
            (
                "        return None\n    ensure_open(session)\n    return None",
                "        return None\n    return None",
            ),
        ),
        (*_FINALIZE, "tests/test_finalize_async.py"),
    ),
    Mutant(
        "parts: keeping a session for retries revives an expired one",
        "portal/services/finalize/request.py",
        (("                expires_at__gt=now,\n", ""),),
        ("tests/test_finalize_room.py", LEASE),
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
        (LEASE, "tests/test_finalize_async.py"),
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
        "parts: a token without a name shows no name in the admin",
        "portal/models.py",
        (("{self.name or 'unnamed'}", "{self.name}"),),
        ("tests/test_models.py", "tests/test_admin.py"),
    ),
)
