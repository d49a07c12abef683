"""Reading stored objects back in tests, through Django's Storage API (either backend)."""

import io
import os

from portal import storage

CHUNK = 1024 * 1024


def iter_final(key, chunk_size=CHUNK):
    """A final object's bytes in chunks; ``FileNotFoundError`` (local) if it is gone."""
    with storage.final_storage().open(key, "rb") as handle:
        while chunk := handle.read(chunk_size):
            yield chunk


def store_part(session_id, number, data, offset):
    """``data`` stored as the backend keeps part ``number``: at ``offset`` in its session's
    file, or an object of its own (``StoredObject``, its ``offset`` None then)."""
    with storage.backend().part_range(session_id, offset, len(data)) as place:
        if place is not None:
            return place.write(io.BytesIO(data), max_bytes=len(data))
    return storage.write_temp_part(
        io.BytesIO(data), session_id=session_id, part_number=number, max_bytes=len(data)
    )


def final_exists(key):
    return storage.final_storage().exists(key)


def temp_exists(key):
    return storage.temp_storage().exists(key)


def part_bytes(part):
    """The bytes a part row's temp object holds for it: its own object, or its range of
    the session's assembly file (parts written in place)."""
    source = storage.part_source(
        part.part_number, part.size_bytes, part.sha256, part.temp_key, part.temp_offset
    )
    data = b"".join(storage.iter_temp(source.key))
    return data if source.offset is None else data[source.offset : source.offset + source.size]


def own_temp_keys():
    """Temp objects of their own (every part on S3; parts written aside on local disk).
    Assembly files are left out: bytes in a range no part row records are nobody's, and
    the next upload of that part overwrites them."""
    keys = (item.key for item in storage.list_temp())
    return sorted(key for key in keys if storage.assembly_session(key) is None)


def assembly_blocks():
    """Disk blocks the local assembly files hold (0 on S3): a write that was not recorded
    gives its range's blocks back."""
    temp = storage.temp_storage()
    if not storage.backend().has_volumes:
        return 0
    keys = (item.key for item in storage.list_temp())
    paths = (temp.path(key) for key in keys if storage.assembly_session(key) is not None)
    return sum(os.stat(path).st_blocks for path in paths)
