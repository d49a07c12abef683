"""Local disk keeps every part in its session's one file: parts of sessions in flight at the
upgrade that have a file of their own (the layout ``PORTAL_LOCAL_IN_PLACE_ASSEMBLY=false``
made, or a part written aside) are copied into their range of that file, checked against
their sha256 on the way, and their own file removed. A part whose file is gone or changed
loses its key, so finalize fails the session (``part_corrupt``) as it would have. Such a
session's saved file hash is dropped: finalize reads its parts for it."""

import hashlib
import os
import uuid

from django.core.files.storage import FileSystemStorage, storages
from django.db import migrations

# Sessions taking parts. One being assembled keeps its parts' files: the old code may be
# reading them while this runs, and finalize copies such parts into place itself.
ACTIVE = ("init", "in_progress")
BLOCK_BYTES = 1024 * 1024


def move_parts(apps, schema_editor):
    temp = storages["portal_temp"]
    if not isinstance(temp, FileSystemStorage):
        return
    UploadPart = apps.get_model("portal", "UploadPart")
    UploadSession = apps.get_model("portal", "UploadSession")
    parts = (
        UploadPart.objects.filter(session__status__in=ACTIVE, temp_offset__isnull=True)
        .exclude(temp_key="")
        .select_related("session")
        .order_by("pk")
    )
    moved = set()
    for part in parts.iterator():
        key = _session_file(part.session_id)
        offset = (part.part_number - 1) * part.session.chunk_size_bytes
        own = os.path.join(temp.location, part.temp_key)
        copied = _copy(temp, own, key, offset, part)
        part.temp_key, part.temp_offset = (key, offset) if copied else ("", None)
        part.save(update_fields=["temp_key", "temp_offset"])
        if copied:
            os.unlink(own)
        moved.add(part.session_id)
    UploadSession.objects.filter(pk__in=moved).update(hashed_parts=0, hash_state=None)


def _session_file(session_id):
    hexid = uuid.UUID(str(session_id)).hex
    return f"{hexid[:2]}/{hexid}-parts"


def _copy(temp, own, key, offset, part):
    """Copy the part's own file to ``offset`` of the session's file; False (nothing copied
    that counts) when it is gone or does not match its size and sha256."""
    try:
        source = open(own, "rb")
    except FileNotFoundError:
        return False
    path = os.path.join(temp.location, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, temp.file_permissions_mode or 0o666)
    digest, size = hashlib.sha256(), 0
    try:
        while block := source.read(BLOCK_BYTES):
            digest.update(block)
            os.pwrite(fd, block, offset + size)
            size += len(block)
        os.fsync(fd)
    finally:
        os.close(fd)
        source.close()
    return size == part.size_bytes and digest.hexdigest() == part.sha256


class Migration(migrations.Migration):
    # Not one transaction: each part's row is committed at its new place before its old
    # file is removed, so a run that stops half-way (and its rerun) loses no part.
    atomic = False
    dependencies = [("portal", "0007_part_temp_offset")]

    operations = [migrations.RunPython(move_parts, migrations.RunPython.noop)]
