"""The storage adapter's contract, run against local files and against S3 (moto server)."""

import hashlib
import io
import os
import subprocess
import tempfile
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from portal import storage
from portal.storage import streams
from tests import objects
from tests.conftest import PYTHON, ROOT
from tests.storage_helpers import Pattern  # noqa: F401  (importable from here, as it was)

SESSION = "0f0e0d0c-0b0a-0908-0706-050403020100"


def test_write_temp_part_hashes_and_counts(any_storage):
    import hashlib

    body = os.urandom(300_000)
    obj = storage.write_temp_part(
        __import__("io").BytesIO(body), session_id=SESSION, part_number=3, max_bytes=len(body)
    )
    assert obj.size == len(body)
    assert obj.sha256 == hashlib.sha256(body).hexdigest()
    assert obj.key.split("/")[1].startswith("0f0e0d0c0b0a09080706050403020100-000003-")
    assert b"".join(storage.iter_temp(obj.key)) == body
    assert objects.temp_exists(obj.key)


def test_too_large_stream_leaves_nothing(any_storage):
    import io

    with pytest.raises(storage.TooLarge):
        storage.write_temp_part(
            io.BytesIO(b"x" * 1001), session_id=SESSION, part_number=1, max_bytes=1000
        )
    assert list(storage.list_temp()) == []


def test_failing_stream_leaves_nothing(any_storage):
    class Broken:
        sent = 0

        def read(self, n):
            self.sent += 1
            if self.sent > 3:
                raise ConnectionResetError("client went away")
            return b"y" * min(n, 70_000)

    with pytest.raises(ConnectionResetError):
        storage.write_temp_part(Broken(), session_id=SESSION, part_number=1, max_bytes=10**7)
    assert list(storage.list_temp()) == []


def test_keys_come_from_the_server(any_storage):
    import io

    obj = storage.write_temp_part(
        io.BytesIO(b"abc"), session_id=SESSION, part_number=1, max_bytes=3
    )
    assert ".." not in obj.key and not obj.key.startswith("/")


def test_bulk_delete_counts_missing_as_deleted(any_storage):
    import io

    keys = [
        storage.write_temp_part(
            io.BytesIO(b"p%d" % i), session_id=SESSION, part_number=i, max_bytes=10
        ).key
        for i in range(1, 6)
    ]
    result = storage.delete_temp([*keys, "zz/never-existed"])
    assert sorted(result.deleted) == sorted([*keys, "zz/never-existed"])
    assert result.failed == {}
    assert list(storage.list_temp()) == []


def test_bulk_delete_reports_per_key_failure_locally(settings, data_dir):
    from tests.conftest import apply_storage

    apply_storage(settings, "local", data_dir)
    import io

    good = storage.write_temp_part(
        io.BytesIO(b"ok"), session_id=SESSION, part_number=1, max_bytes=2
    )
    stuck = "ab/stuck-part"
    os.makedirs(os.path.join(data_dir, "temp", stuck))  # unlink() of a directory fails
    result = storage.delete_temp([good.key, stuck])
    assert result.deleted == [good.key]
    assert list(result.failed) == [stuck]
    assert "IsADirectoryError" in result.failed[stuck]


def test_bulk_delete_of_many_local_keys_in_threads_keeps_order_and_failures(settings, data_dir):
    """Enough keys to spread over several unlink threads; one of them cannot go."""
    from tests.conftest import apply_storage

    apply_storage(settings, "local", data_dir)
    import io

    keys = [
        storage.write_temp_part(
            io.BytesIO(b"x"), session_id=SESSION, part_number=i, max_bytes=1
        ).key
        for i in range(1, 1 + 8 * storage.local.LOCAL_DELETE_MIN_PER_THREAD)
    ]
    stuck = keys[100]
    os.unlink(data_dir / "temp" / stuck)
    os.makedirs(data_dir / "temp" / stuck)  # unlink() of a directory fails
    result = storage.delete_temp(keys)
    assert result.deleted == [key for key in keys if key != stuck]
    assert list(result.failed) == [stuck]
    assert [obj.key for obj in storage.list_temp()] == []


@pytest.mark.parametrize("key", ["../escape", "ab/../../escape", "/etc/passwd", "", "a\0b"])
def test_bulk_delete_refuses_a_local_key_outside_the_root(settings, data_dir, key):
    from django.core.exceptions import SuspiciousFileOperation

    from tests.conftest import apply_storage

    apply_storage(settings, "local", data_dir)
    outside = data_dir / "escape"
    outside.write_bytes(b"keep me")
    with pytest.raises(SuspiciousFileOperation):
        storage.delete_temp([key])
    assert outside.read_bytes() == b"keep me"


def test_bulk_delete_with_the_local_root_gone_forgets_nothing(settings, data_dir):
    """An unmounted volume looks like "every object missing"; that must not count as gone."""
    from tests.conftest import apply_storage

    apply_storage(settings, "local", data_dir)
    import io

    key = storage.write_temp_part(
        io.BytesIO(b"ok"), session_id=SESSION, part_number=1, max_bytes=2
    ).key
    os.rename(data_dir / "temp", data_dir / "temp.unmounted")
    result = storage.delete_temp([key])
    assert result.deleted == []
    assert "storage root is missing" in result.failed[key]
    os.rename(data_dir / "temp.unmounted", data_dir / "temp")
    assert [obj.key for obj in storage.list_temp()] == [key]


def test_a_part_in_place_under_a_missing_root_is_an_outage_not_a_missing_part(settings, data_dir):
    """``hash_part`` of a range of the assembly file while the temp volume is unmounted:
    ``StorageUnavailable`` (try again), never ``SourceMismatch`` (the part is gone)."""
    from tests.conftest import apply_storage

    apply_storage(settings, "local", data_dir)
    backend = storage.backend()
    with backend.part_range(SESSION, 0, 2) as place:
        stored = place.write(io.BytesIO(b"ok"), max_bytes=2)
    source = storage.part_source(1, 2, stored.sha256, stored.key, 0)
    os.rename(data_dir / "temp", data_dir / "temp.unmounted")
    with pytest.raises(storage.StorageUnavailable, match="storage root is missing"):
        backend.hash_part(source, hashlib.sha256())
    os.rename(data_dir / "temp.unmounted", data_dir / "temp")
    digest = hashlib.sha256()
    backend.hash_part(source, digest)
    assert digest.hexdigest() == hashlib.sha256(b"ok").hexdigest()


@pytest.mark.s3
def test_bulk_delete_on_s3_uses_one_request_per_thousand(settings, data_dir, moto_s3):
    from tests.conftest import apply_storage

    bucket = moto_s3.new_bucket()
    apply_storage(settings, "s3", data_dir, s3=moto_s3, bucket=bucket)
    client = moto_s3.client()
    keys = [f"aa/bulk-{i:05d}" for i in range(2001)]  # S3 takes at most 1,000 a request
    for key in keys[::100]:  # a few real objects; deleting a missing key succeeds on S3
        client.put_object(Bucket=bucket, Key=f"temp/{key}", Body=b"x")
    result = storage.delete_temp(keys)
    assert result.requests == 3
    assert len(result.deleted) == 2001 and result.failed == {}
    assert client.list_objects_v2(Bucket=bucket, Prefix="temp/").get("KeyCount") == 0


@pytest.mark.s3
def test_bulk_delete_on_s3_outage_reports_every_key(settings, data_dir, moto_s3_factory):
    from tests.conftest import apply_storage

    server = moto_s3_factory()
    apply_storage(settings, "s3", data_dir, s3=server, bucket=server.new_bucket())
    server.stop()
    result = storage.delete_temp(["aa/one", "bb/two"])
    assert result.deleted == []
    assert set(result.failed) == {"aa/one", "bb/two"}
    assert "EndpointConnectionError" in result.failed["aa/one"]


def test_list_temp_by_age(any_storage, time_machine):
    import io

    old = storage.write_temp_part(
        io.BytesIO(b"old"), session_id=SESSION, part_number=1, max_bytes=3
    )
    cutoff = datetime.now(UTC) + timedelta(seconds=1)
    listed = {item.key: item for item in storage.list_temp(older_than=cutoff)}
    assert old.key in listed
    earlier = datetime.now(UTC) - timedelta(hours=1)
    assert old.key not in {item.key for item in storage.list_temp(older_than=earlier)}


def test_final_objects_round_trip(any_storage):
    chunks = [os.urandom(70_000) for _ in range(5)]
    obj = storage.write_final(iter(chunks), file_id=SESSION)
    assert obj.size == 350_000
    assert b"".join(objects.iter_final(obj.key)) == b"".join(chunks)
    assert objects.final_exists(obj.key)
    assert storage.delete_final([obj.key]).deleted == [obj.key]
    assert not objects.final_exists(obj.key)


def test_missing_temp_object_raises_file_not_found(any_storage):
    with pytest.raises(FileNotFoundError):
        b"".join(storage.iter_temp("aa/missing"))


STREAM_SCRIPT = f"""
import os, resource, sys, uuid
import django
from configurations import importer
importer.install()
django.setup()
from portal import storage
from tests.storage_helpers import Pattern
from tests import objects
size = int(sys.argv[1])
objects.temp_exists("warm/up")  # load the S3 client before measuring
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sources, session = [], uuid.uuid4()  # a session of its own for each run
for number in (1, 2):
    offset = (number - 1) * size
    with storage.backend().part_range(session, offset, size) as place:
        if place is None:
            obj = storage.write_temp_part(
                Pattern(size), session_id=session, part_number=number, max_bytes=size
            )
        else:
            obj = place.write(Pattern(size), max_bytes=size)
    sources.append(storage.Source(obj.key, obj.size, obj.sha256, "part", offset=obj.offset))
    if number == 1:
        total = sum(len(c) for c in storage.iter_temp(obj.key))
        final = storage.write_final(storage.iter_temp(obj.key), file_id={SESSION!r})
assembled = storage.assemble_final(sources, file_id={SESSION!r})
assert assembled.size == 2 * size
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(obj.size, total, final.size, before, after)
"""


def _peak_growth_mib(env, size):
    result = subprocess.run(
        [PYTHON, "-c", STREAM_SCRIPT, str(size)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    written, read, final, before_kb, after_kb = map(int, result.stdout.split())
    assert written == read == final == size
    return (after_kb - before_kb) / 1024


@pytest.mark.slow
def test_large_streams_stay_in_bounded_memory(any_storage):
    """Write, read back, copy and assemble (twice the object) to final storage 32 MiB and
    128 MiB: memory does not grow with the size (a whole object held would add 96 MiB).

    Local files stream in 1 MiB reads; S3 multipart transfers keep at most 4 x 8 MiB chunks
    in flight (``boot.settings._bounded_transfer_config``), whatever the size.
    """
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "boot.settings",
        "DJANGO_CONFIGURATION": "Test",
        "PYTHONPATH": str(ROOT),
        **any_storage,
    }
    small = _peak_growth_mib(env, 32 * 1024 * 1024)
    large = _peak_growth_mib(env, 128 * 1024 * 1024)
    kind = any_storage["PORTAL_STORAGE"]
    print(f"\n[{kind}] 3 x 32 MiB: peak RSS +{small:.1f} MiB; 3 x 128 MiB: +{large:.1f} MiB")
    assert large - small < 24
    assert large < (16 if kind == "local" else 96)


def _sources(chunks, session=SESSION):
    """``chunks`` stored as the backend keeps parts (one after another in the session's
    file, or objects of their own) and their ``storage.Source`` records."""
    sources, offset = [], 0
    for number, chunk in enumerate(chunks, 1):
        obj = objects.store_part(session, number, chunk, offset)
        sha = hashlib.sha256(chunk).hexdigest()
        sources.append(
            storage.Source(obj.key, len(chunk), sha, f"part {number}", offset=obj.offset)
        )
        offset += len(chunk)
    return sources


def test_assemble_final_concatenates_and_hashes_across_buffer_boundaries(any_storage):
    block = streams.BLOCK_BYTES
    chunks = [os.urandom(n) for n in (block + 3, 1, block * 2 - 1, 7, 5000)]
    seen = []
    obj = storage.assemble_final(_sources(chunks), file_id=SESSION, progress=seen.append)
    data = b"".join(chunks)
    assert (obj.size, obj.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert b"".join(objects.iter_final(obj.key)) == data
    assert seen == [sum(map(len, chunks[:i])) for i in range(1, len(chunks) + 1)]
    retry = _sources(chunks[::-1], session=uuid.uuid4())
    again = storage.assemble_final(retry, file_id=SESSION)
    assert again.key == obj.key
    assert b"".join(objects.iter_final(obj.key)) == b"".join(chunks[::-1])


@pytest.mark.parametrize("damage", ["same size, other bytes", "shorter", "longer", "gone"])
def test_assemble_final_refuses_a_changed_source_and_keeps_nothing(any_storage, damage):
    if storage.backend().assembles_in_place:
        pytest.skip("a part of its own is damaged here; in place: tests/test_in_place.py")
    chunks = [os.urandom(300_000), os.urandom(300_000), os.urandom(1000)]
    sources = _sources(chunks)
    changed = {
        "same size, other bytes": os.urandom(300_000),
        "shorter": chunks[1][:-1],
        "longer": chunks[1] + b"!",
    }.get(damage)
    storage.delete_temp([sources[1].key])
    if changed is not None:
        storage.temp_storage().save(sources[1].key, io.BytesIO(changed))
    with pytest.raises(storage.SourceMismatch) as failure:
        storage.assemble_final(sources, file_id=SESSION)
    assert failure.value.source == sources[1]
    assert str(failure.value).startswith("part 2 ")
    assert not objects.final_exists(storage.new_final_key(SESSION))


def test_assemble_final_across_filesystems(settings, data_dir):
    """Temp parts on tmpfs, final objects on disk: where the kernel refuses to copy
    between the two, the bytes go through a buffer instead."""
    from tests.conftest import apply_storage

    if not os.path.isdir("/dev/shm"):
        pytest.skip("needs a tmpfs at /dev/shm")
    apply_storage(settings, "local", data_dir)
    with tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
        settings.STORAGES = {
            **settings.STORAGES,
            storage.TEMP_ALIAS: {
                "BACKEND": "portal.storage.local.LocalStorage",
                "OPTIONS": {"location": shm},
            },
        }
        chunks = [os.urandom(streams.BLOCK_BYTES + 11), os.urandom(99)]
        sources = _sources(chunks)
        assert all(os.path.isfile(os.path.join(shm, source.key)) for source in sources)
        assert os.stat(shm).st_dev != os.stat(data_dir).st_dev
        obj = storage.assemble_final(sources, file_id=SESSION)
    data = b"".join(chunks)
    assert obj.sha256 == hashlib.sha256(data).hexdigest()
    assert (data_dir / "final" / obj.key).read_bytes() == data
