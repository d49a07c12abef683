"""Area catalog ``store`` (issue #31): careless changes to ``portal/storage/`` and
``portal/locks.py``, function by function, each pinned by a behaviour test through the
storage interface (``tests/test_pins_store.py`` unless it names another test). Same rules
as ``tests/mutant_catalog.py``.
"""

from tests.mutant_catalog import Mutant

PINS = "tests/test_pins_store.py"
T = (PINS,)


def m(name, path, old, new, tests=T, **kw):
    return Mutant(f"store: {name}", f"portal/{path}", ((old, new),), tests, **kw)


VANISHING = (
    "tests/test_storage_links.py::test_files_and_directories_vanishing_mid_walk_are_not_listed"
)
S3C = "tests/test_storage_s3_client.py::"


MUTANTS = (
    # portal/storage/__init__.py
    m(
        "a quota error (EDQUOT) is an outage, not a full volume",
        "storage/__init__.py",
        "exc.errno in (errno.ENOSPC, errno.EDQUOT)",
        "exc.errno in (errno.ENOSPC,)",
    ),
    m(
        "a backend error is described without its S3 error code",
        "storage/__init__.py",
        'reason = error_code(exc) or getattr(exc, "strerror", None) or ""',
        'reason = getattr(exc, "strerror", None) or ""',
        ("tests/test_storage_s3_client.py::test_an_s3_delete_failure_names_the_s3_error_code",),
    ),
    m(
        "a missing object under a present local root is an outage",
        "storage/__init__.py",
        "if isinstance(storage, FileSystemStorage) and not os.path.isdir(storage.location):",
        "if isinstance(storage, FileSystemStorage):",
        ("tests/test_storage.py::test_missing_temp_object_raises_file_not_found",),
    ),
    m(
        "the listing by age takes an object modified exactly at the cut",
        "storage/__init__.py",
        "item.modified_at < older_than",
        "item.modified_at <= older_than",
    ),
    m(
        "temp deletes keep duplicate keys",
        "storage/__init__.py",
        "return backend().delete(temp_storage(), list(dict.fromkeys(keys)))",
        "return backend().delete(temp_storage(), list(keys))",
    ),
    m(
        "free bytes of temp are asked of final",
        "storage/__init__.py",
        'temp_storage() if name == "temp" else final_storage()',
        'final_storage() if name == "temp" else temp_storage()',
    ),
    m(
        "the final key swaps month and day",
        "storage/__init__.py",
        'return f"{now:%Y/%m/%d}/{uuid.UUID(str(file_id)).hex}"',
        'return f"{now:%Y/%d/%m}/{uuid.UUID(str(file_id)).hex}"',
    ),
    m(
        "a missing S3 source is reported as changed",
        "storage/__init__.py",
        "raise SourceMismatch(source, MISSING) from None\n        if received",
        "raise SourceMismatch(source, MISMATCH) from None\n        if received",
        (
            "tests/test_storage_s3_client.py::test_s3_a_missing_part_is_reported_missing_not_changed",
        ),
    ),
    m(
        "an assembly file name without the suffix is taken for a session",
        "storage/__init__.py",
        "    except ValueError:\n        return None",
        "    except ValueError:\n        return uuid.UUID(int=0)",
    ),
    # portal/storage/local.py
    m(
        "a copied final file is opened write-only (the mmap check cannot read it)",
        "storage/local.py",
        "mode = os.O_RDWR if replace else os.O_WRONLY",
        "mode = os.O_WRONLY",
    ),
    m(
        "a new local file does not get the configured mode",
        "storage/local.py",
        "                if storage.file_permissions_mode is not None:\n"
        "                    os.fchmod(fd, storage.file_permissions_mode)",
        "                pass",
    ),
    m(
        "a failed write leaves its half file behind",
        "storage/local.py",
        "        except BaseException:\n            with contextlib.suppress(FileNotFoundError):\n"
        "                local_walk.unlink(directory, leaf)\n            raise",
        "        except BaseException:\n            raise",
    ),
    m(
        "deleting a missing local file through the storage API fails",
        "storage/local.py",
        "    with contextlib.suppress(FileNotFoundError), key_dir(storage, key) as",
        "    with key_dir(storage, key) as",
    ),
    m(
        "a key with a NUL byte is not refused",
        "storage/local.py",
        ' or "\\0" in key:',
        ":",
        ("tests/test_storage.py::test_bulk_delete_refuses_a_local_key_outside_the_root",),
    ),
    m(
        "a missing shard directory makes its keys fail to delete",
        "storage/local.py",
        "    except FileNotFoundError:\n        if not os.path.isdir(storage.location):\n"
        "            errors.update(dict.fromkeys(keys, ROOT_MISSING))",
        "    except FileNotFoundError:\n        errors.update(dict.fromkeys(keys, ROOT_MISSING))",
    ),
    m(
        "the local listing takes symlinks and fifos",
        "storage/local.py",
        "if stat.S_ISREG(status.st_mode):",
        "if True:",
        (
            "tests/test_storage_links.py::test_the_local_listing_takes_regular_files_only_with_their_keys",
        ),
    ),
    m(
        "a file at the root is listed as ./name",
        "storage/local.py",
        'key = name if prefix == "." else f"{prefix}/{name}"',
        'key = f"{prefix}/{name}"',
        (
            "tests/test_storage_links.py::test_the_local_listing_takes_regular_files_only_with_their_keys",
        ),
    ),
    m(
        "a file vanishing mid-walk breaks the listing",
        "storage/local.py",
        "                except FileNotFoundError:\n                    continue",
        "                except NotADirectoryError:\n                    continue",
        (VANISHING,),
    ),
    m(
        "a directory vanishing mid-walk breaks the listing",
        "storage/local.py",
        "    if not isinstance(exc, FileNotFoundError):\n        raise exc",
        "    raise exc",
        (VANISHING,),
    ),
    m(
        "an error walking the local root is swallowed",
        "storage/local.py",
        "    if not isinstance(exc, FileNotFoundError):\n        raise exc",
        "    pass",
        ("tests/test_storage_links.py::test_an_error_walking_the_local_root_propagates",),
    ),
    # portal/storage/local_walk.py
    m(
        "a directory made under a root does not get the configured mode",
        "storage/local_walk.py",
        "        if mode is not None:\n            os.chmod(made.fd, mode)\n",
        "",
    ),
    m(
        "a file with no name left (unlinked) is taken as the portal's own",
        "storage/local_walk.py",
        "if status.st_nlink != names:",
        "if status.st_nlink > names:",
    ),
    # portal/storage/local_in_place.py
    m(
        "OFD locks are never used (overlapping ranges pass)",
        "storage/local_in_place.py",
        "and not _try_lock(second, 12, 1)",
        "and _try_lock(second, 12, 1)",
    ),
    m(
        "a zero-length range locks to the end of the file",
        "storage/local_in_place.py",
        "request = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, offset, max(size, 1), 0)",
        "request = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, offset, size, 0)",
    ),
    m(
        "a busy range (EAGAIN) is an outage",
        "storage/local_in_place.py",
        "_BUSY = (errno.EAGAIN, errno.EACCES)",
        "_BUSY = (errno.EACCES,)",
    ),
    m(
        "released blocks are punched at the size as offset",
        "storage/local_in_place.py",
        "fallocate(fd, _PUNCH_HOLE, offset, max(size, 1))",
        "fallocate(fd, _PUNCH_HOLE, max(size, 1), offset)",
    ),
    m(
        "release punches no hole (mode without KEEP_SIZE)",
        "storage/local_in_place.py",
        "_PUNCH_HOLE = 0x02 | 0x01",
        "_PUNCH_HOLE = 0x02",
    ),
    m(
        "an assembly file opened, not made, counts as made by this request",
        "storage/local_in_place.py",
        "return local_walk.open_file(directory, leaf, flags), False",
        "return local_walk.open_file(directory, leaf, flags), True",
    ),
    m(
        "a final name of another file is kept at link time",
        "storage/local_in_place.py",
        "if existing is None or not os.path.samestat(existing, held):",
        "if existing is None:",
    ),
    m(
        "a linked final file does not get the final storage's mode",
        "storage/local_in_place.py",
        "    if final.file_permissions_mode is not None:\n"
        "        os.fchmod(fd, final.file_permissions_mode)",
        "",
    ),
    m(
        "the named lock fallback keys ranges by the file only",
        "storage/local_in_place.py",
        'locks.hold(f"range:{key}:{offset}")',
        'locks.hold(f"range:{key}")',
    ),
    # portal/storage/local_assembly.py
    m(
        "an assembly file longer than its parts is linked",
        "storage/local_assembly.py",
        "if size != offsets[-1]:",
        "if size < offsets[-1]:",
    ),
    m(
        "a short assembly file blames the last part",
        "storage/local_assembly.py",
        "broken = next((s for s in sources if not _holds(size, s)), sources[-1])",
        "broken = sources[-1]",
    ),
    m(
        "parts of their own are placed only when none is in place",
        "storage/local_assembly.py",
        "if all(source.offset is not None for source in sources):",
        "if any(source.offset is not None for source in sources):",
    ),
    m(
        "a part of its own is placed one part too early",
        "storage/local_assembly.py",
        "offset = sum(done.size for done in placed)",
        "offset = sum(done.size for done in placed[:-1])",
    ),
    m(
        "a part of its own copied short is an outage, not a changed part",
        "storage/local_assembly.py",
        "        if copy_range(own, held[0], source.size, offset) != source.size:\n"
        "            raise SourceMismatch(source, MISMATCH)\n",
        "        copy_range(own, held[0], source.size, offset)\n",
    ),
    m(
        "room is not asked before a copy",
        "storage/local_assembly.py",
        "        if room is not None:\n            room(size)\n",
        "",
    ),
    m(
        "a part written in place is never checked at finalize",
        "storage/local_assembly.py",
        "if not source.sha256 and source.offset is not None:",
        "if not source.sha256 or source.offset is not None:",
    ),
    m(
        "hashing a part past the end of its file is an outage, not a changed part",
        "storage/local_assembly.py",
        "        if not _holds(os.fstat(fd).st_size, source):\n"
        "            raise SourceMismatch(source, MISMATCH)\n",
        "",
    ),
    m(
        "a part ending exactly at the end of its file is not held",
        "storage/local_assembly.py",
        "return file_size >= source.offset + source.size",
        "return file_size > source.offset + source.size",
    ),
    m(
        "the buffer copy reads a whole buffer past the range",
        "storage/local_assembly.py",
        "data = os.pread(src, min(size, COPY_BUFFER_BYTES), src_offset)",
        "data = os.pread(src, COPY_BUFFER_BYTES, src_offset)",
    ),
    m(
        "a kernel copy ignores the source offset",
        "storage/local_assembly.py",
        "copied = copy(src, dst, size - done, src_offset + done, offset + done)",
        "copied = copy(src, dst, size - done, done, offset + done)",
    ),
    m(
        "a refused kernel copy is an outage instead of a buffer copy",
        "storage/local_assembly.py",
        "if copy is _copy_through_buffer or exc.errno not in KERNEL_COPY_REFUSED:",
        "if True:",
    ),
    m(
        "the next hash window starts after the unaligned offset",
        "storage/local_assembly.py",
        "        offset = start + length\n    return digest",
        "        offset = offset + length\n    return digest",
        ("tests/test_large_parts_on_disk.py",),
    ),
    m(
        "a range ending exactly at the end of the file is refused",
        "storage/local_assembly.py",
        "if os.fstat(fd).st_size < end:",
        "if os.fstat(fd).st_size <= end:",
    ),
    # portal/storage/local_backend.py
    m(
        "a failed write in a range keeps its blocks",
        "storage/local_backend.py",
        "        except BaseException:\n            self.release()\n            raise",
        "        except BaseException:\n            raise",
    ),
    m(
        "a range is written without checking the file is the portal's own",
        "storage/local_backend.py",
        "            local_walk.check_own(self.fd, os.path.join(self.storage.location, self.key))",
        "            pass",
    ),
    m(
        "a tail copied to temp starts at the file's start",
        "storage/local_backend.py",
        "if local_assembly.copy_range(self.fd, copy, size, 0, self.offset) != size:",
        "if local_assembly.copy_range(self.fd, copy, size, 0) != size:",
    ),
    m(
        "final bytes count a link as a copy",
        "storage/local_backend.py",
        "            if local_in_place.same_filesystem(self.temp, self.final):\n"
        "                return 0",
        "            if not local_in_place.same_filesystem(self.temp, self.final):\n"
        "                return 0",
    ),
    m(
        "the final location joins the temp root",
        "storage/local_backend.py",
        "path = os.path.join(self.final.location, key)",
        "path = os.path.join(self.temp.location, key)",
    ),
)
