"""Area catalog ``store``, continued (``tests/mutant_area_store.py`` holds local disk and
the storage interface): S3, the streams, the saved sha256 state and the named locks."""

from tests.mutant_area_store import m

S3C = "tests/test_storage_s3_client.py::"
S3_RULES = S3C + "test_s3_copies_parts_within_its_multipart_rules_only"
STALE = S3C + "test_s3_stale_multipart_uploads_are_those_begun_before_the_cut"
PG_LOCK = "tests/test_locks.py::test_a_postgres_lock_is_held_per_name_and_released_on_exit"


MUTANTS = (
    # portal/storage/s3_backend.py
    m(
        "S3 copies parts of exactly 5 MiB through the process",
        "storage/s3_backend.py",
        "return total_parts == 1 or chunk_size >= MIN_COPY_PART",
        "return total_parts == 1 or chunk_size > MIN_COPY_PART",
        (S3_RULES,),
    ),
    m(
        "S3 copy refuses exactly 10,000 parts",
        "storage/s3_backend.py",
        "total_parts > MAX_COPY_PARTS",
        "total_parts >= MAX_COPY_PARTS",
        (S3_RULES,),
    ),
    m(
        "S3 copy judges the short last part against the 5 MiB minimum",
        "storage/s3_backend.py",
        "min(sizes[:-1], default=0)",
        "min(sizes, default=0)",
        ("tests/test_storage_s3_client.py::test_s3_copies_parts_whose_last_one_is_short",),
    ),
    m(
        "the S3 listing keeps the location prefix in its keys",
        "storage/s3_backend.py",
        'key = entry["Key"][len(prefix) :]',
        'key = entry["Key"]',
        ("tests/test_storage_s3_client.py::test_s3_lists_keys_without_the_location_prefix",),
    ),
    m(
        "stale multipart uploads are the young ones",
        "storage/s3_backend.py",
        'if upload["Initiated"] < older_than:',
        'if upload["Initiated"] > older_than:',
        (STALE,),
    ),
    m(
        "a stale multipart upload keeps the final prefix in its key",
        "storage/s3_backend.py",
        'yield upload["Key"][len(prefix) :], upload["UploadId"]',
        'yield upload["Key"], upload["UploadId"]',
        (STALE,),
    ),
    m(
        "a missing S3 object reads as an outage",
        "storage/s3_backend.py",
        "        except client.exceptions.NoSuchKey as exc:\n"
        "            raise FileNotFoundError(key) from exc",
        "        except client.exceptions.NoSuchKey:\n            raise",
        (
            "tests/test_storage_s3_client.py::test_s3_a_missing_part_is_reported_missing_not_changed",
        ),
    ),
    m(
        "a failed S3 delete batch is counted as deleted",
        "storage/s3_backend.py",
        "                result.failed.update(dict.fromkeys(batch, describe(exc)))\n"
        "                continue",
        "                result.failed.update(dict.fromkeys(batch, describe(exc)))",
        ("tests/test_storage_s3_client.py::test_an_s3_delete_failure_names_the_s3_error_code",),
    ),
    # portal/storage/streams.py
    m(
        "a stream one byte over the limit is cut, not refused",
        "storage/streams.py",
        "size = min(size, self.limit - self.size + 1)",
        "size = min(size, self.limit - self.size)",
    ),
    m(
        "a stream of exactly the limit is refused",
        "storage/streams.py",
        "if self.limit is not None and self.size + len(data) > self.limit:",
        "if self.limit is not None and self.size + len(data) >= self.limit:",
    ),
    m(
        "a short read of an iterable source ends the stream",
        "storage/streams.py",
        "        if len(data) in (0, size):\n            return data\n",
        "        return data\n",
    ),
    m(
        "the file hash is not given the written blocks",
        "storage/streams.py",
        "digests = [digest for digest in (own, also) if digest is not None]",
        "digests = [digest for digest in (own,) if digest is not None]",
    ),
    # portal/storage/sha256state.py
    m(
        "a state of another format version is resumed",
        "storage/sha256state.py",
        "or state[0] != FORMAT:",
        ":",
        ("tests/test_sha256state.py",),
    ),
    m(
        "a state whose checksum fails is resumed",
        "storage/sha256state.py",
        "    if _CRC.unpack(crc)[0] != zlib.crc32(body):\n        return None\n",
        "",
        ("tests/test_sha256state.py",),
    ),
    m(
        "a state of another library is resumed",
        "storage/sha256state.py",
        "if body[1] != len(writer) or body[2 : 2 + len(writer)] != writer:",
        "if body[1] != len(writer):",
        ("tests/test_sha256state.py",),
    ),
    m(
        "a non-contiguous view is handed to OpenSSL as it is",
        "storage/sha256state.py",
        "if view.readonly or not view.contiguous:",
        "if view.readonly:",
        ("tests/test_sha256state.py",),
    ),
    m(
        "a state for another length with the same pending bytes is resumed",
        "storage/sha256state.py",
        "(high << 32 | low) == length * 8",
        "(high << 32 | low) % 512 == length * 8 % 512",
        ("tests/test_sha256state.py",),
    ),
    # portal/locks.py
    m(
        "a file lock is taken even when another holder has it",
        "locks.py",
        "        except BlockingIOError:\n            os.close(fd)\n"
        "            raise LockBusy(name) from None",
        "        except BlockingIOError:\n            return fd",
        ("tests/test_locks.py::test_a_file_lock_is_refused_while_held_in_the_same_process",),
    ),
    m(
        "a PostgreSQL lock is never released",
        "locks.py",
        '                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])',
        "                pass",
        (PG_LOCK,),
        needs_postgres=True,
    ),
    m(
        "a taken PostgreSQL lock is not refused",
        "locks.py",
        "    if not acquired:\n        raise LockBusy(name)",
        "    if acquired is None:\n        raise LockBusy(name)",
        (PG_LOCK,),
        needs_postgres=True,
    ),
    m(
        "PostgreSQL lock names share a key by their first byte",
        "locks.py",
        'hashlib.sha256(name.encode()).digest()[:8], "big"',
        'hashlib.sha256(name.encode()[:1]).digest()[:8], "big"',
        (PG_LOCK,),
        needs_postgres=True,
    ),
)
