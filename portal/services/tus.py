"""tus 1.0 on upload sessions; ``TusUpload`` keeps what tus adds (metadata, the expected
sha256, the tail). The offset is computed from the recorded parts and the tail, never
stored, so HEAD answers what is in storage whatever broke in between."""

import base64
import binascii
import hashlib
import re
import uuid

from django.db import transaction
from django.db.models import Count, Max

from portal import storage
from portal.lookups import one_or_none
from portal.models import TusUpload, UploadPart, UploadSession
from portal.parts import bytes_in_parts
from portal.services import finalize, sessions
from portal.services.errors import BadRequest, NotFound, api_error
from portal.services.guards import storage_faults

TUS_VERSION = "1.0.0"
EXTENSIONS = ("creation", "creation-with-upload", "expiration", "termination", "checksum")
CHECKSUM_ALGORITHMS = {"sha1": hashlib.sha1, "md5": hashlib.md5, "sha256": hashlib.sha256}
PATCH_CONTENT_TYPE = "application/offset+octet-stream"
MAX_METADATA_CHARS = 8192
DEFAULT_FILENAME = "upload"
FILENAME_KEYS = ("filename", "name")
FILETYPE_KEYS = ("filetype", "type")
_METADATA_KEY = re.compile(r"[^\s,]+")
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_DIGITS = re.compile(r"[0-9]{1,19}", re.ASCII)
Status = UploadSession.Status


PreconditionFailed = api_error("PreconditionFailed", 412, "tus_version_unsupported")
UnsupportedMediaType = api_error("UnsupportedMediaType", 415, "unsupported_media_type")
Locked = api_error("Locked", 423, "upload_locked")
ChecksumMismatch = api_error("ChecksumMismatch", 460, "checksum_mismatch")


def check_version(value):
    """412 unless the request speaks tus 1.0.0 (``Tus-Resumable``)."""
    if value != TUS_VERSION:
        raise PreconditionFailed(
            f"send Tus-Resumable: {TUS_VERSION} (got {value!r}); this server speaks only that"
        )


def parse_metadata(header):
    """``Upload-Metadata`` -> ``{key: bytes}``. Absent or blank is no metadata (tuspy
    sends an empty header); a key may come without a value; keys are unique."""
    if header is None or not header.strip():
        return {}
    if len(header) > MAX_METADATA_CHARS:
        raise _bad_metadata(f"is longer than {MAX_METADATA_CHARS} characters")
    pairs = {}
    for item in header.split(","):
        key, _, value = item.strip().partition(" ")
        if not _METADATA_KEY.fullmatch(key) or " " in value.strip():
            raise _bad_metadata("must be comma-separated 'key base64value' pairs")
        if key in pairs:
            raise _bad_metadata(f"names {key!r} twice")
        try:
            pairs[key] = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise _bad_metadata(f"{key!r} is not base64") from None
    return pairs


def _bad_metadata(problem):
    return BadRequest(f"Upload-Metadata {problem}", code="invalid_upload_metadata")


def _text_value(metadata, keys):
    for key in keys:
        if key in metadata:
            try:
                return metadata[key].decode()
            except UnicodeDecodeError:
                raise _bad_metadata(f"{key!r} is not UTF-8") from None
    return ""


def integer_header(value, name, *, required=True):
    """A non-negative integer header, or None when absent and not ``required``."""
    if value is None or value == "":
        if required:
            raise BadRequest(f"send {name}", code=f"{_code(name)}_required")
        return None
    if not _DIGITS.fullmatch(value.strip()):
        raise BadRequest(f"{name} must be a non-negative integer", code=f"invalid_{_code(name)}")
    return int(value)


def _code(name):
    return name.lower().replace("-", "_")


def parse_checksum(header):
    """``Upload-Checksum: <algorithm> <base64 digest>`` -> ``(hash object, digest)``."""
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    factory = CHECKSUM_ALGORITHMS.get(algorithm.lower())
    if factory is None:
        raise BadRequest(
            f"Upload-Checksum algorithm {algorithm!r} is not supported; use one of "
            + ", ".join(CHECKSUM_ALGORITHMS),
            code="checksum_algorithm_unsupported",
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    hasher = factory()
    if len(digest) != hasher.digest_size:
        raise BadRequest(
            f"Upload-Checksum must be '{algorithm} <base64 of the {hasher.digest_size}-byte "
            "digest>'",
            code="invalid_upload_checksum",
        )
    return hasher, digest


def create_upload(owner, *, length, metadata, defer_length=None, concat=None):
    """POST: a new session of ``owner`` with its ``TusUpload`` (raw header values)."""
    if concat is not None:
        raise BadRequest(
            "Upload-Concat (the concatenation extension) is not supported: upload the file "
            "as one tus upload, in as many PATCH requests as you like",
            code="concatenation_unsupported",
        )
    if defer_length is not None:
        raise BadRequest(
            "Upload-Defer-Length is not supported: send Upload-Length (the quotas and the "
            "free-space check need the size up front)",
            code="defer_length_unsupported",
        )
    size = integer_header(length, "Upload-Length")
    values = parse_metadata(metadata)
    expected = _text_value(values, ("sha256",))
    if expected and not _SHA256_HEX.fullmatch(expected):
        raise _bad_metadata("'sha256' must be 64 hex digits (the whole file's SHA-256)")
    spec = {
        "filename": _text_value(values, FILENAME_KEYS) or DEFAULT_FILENAME,
        "content_type": _text_value(values, FILETYPE_KEYS) or sessions.DEFAULT_CONTENT_TYPE,
        "size_bytes": size,
    }
    with transaction.atomic():
        session, _ = sessions.create_session(owner, spec)
        TusUpload.objects.create(
            session=session, metadata=(metadata or "").strip(), sha256=expected.lower()
        )
    return session


def get_upload(owner, upload_id):
    """``(session, tus)`` of the owner's tus upload; 404 for anything else."""
    tus = one_or_none(
        TusUpload.objects.select_related("session__file").filter(
            pk=upload_pk(upload_id), session__owner=owner
        )
    )
    if tus is None:
        raise _not_found()
    return tus.session, tus


def upload_pk(upload_id):
    """The upload's id as a UUID; 404 for what cannot be one."""
    try:
        return uuid.UUID(str(upload_id))
    except ValueError:
        raise _not_found() from None


def _not_found():
    return NotFound("no such tus upload", code="upload_not_found")


def ensure_usable(session):
    """410 for an upload that failed, was terminated or expired; finalizing and complete
    uploads pass (their offset is their length)."""
    if session.status not in (Status.FINALIZING, Status.COMPLETE):
        sessions.ensure_open(session)


def contiguous_parts(session_pk):
    """How many parts are recorded without a gap from part 1."""
    totals = UploadPart.objects.filter(session_id=session_pk).aggregate(
        count=Count("pk"), last=Max("part_number")
    )
    if not totals["count"] or totals["count"] == totals["last"]:
        return totals["count"]
    numbers = (
        UploadPart.objects.filter(session_id=session_pk)
        .order_by("part_number")
        .values_list("part_number", flat=True)
    )
    done = 0
    for number in numbers.iterator():
        if number != done + 1:
            break
        done = number
    return done


def current_offset(session, tus):
    """The bytes received and kept: all of them once the upload is finalizing or done."""
    if session.status in (Status.FINALIZING, Status.COMPLETE):
        return session.total_size_bytes
    done = contiguous_parts(session.pk)
    offset = bytes_in_parts(done, session.chunk_size_bytes, session.total_size_bytes)
    if tus.tail_key and tus.tail_part == done + 1:
        offset += tus.tail_bytes
    return offset


def upload_info(owner, upload_id):
    """HEAD: ``(offset, length, expires_at or None, metadata header)``. An open upload with
    every byte in is finalized first: a client seeing offset = length sends nothing more."""
    session, tus = get_upload(owner, upload_id)
    ensure_usable(session)
    offset = current_offset(session, tus)
    if session.status in UploadSession.OPEN_STATUSES and offset == session.total_size_bytes:
        finalize.finalize_session(owner, session.pk)
        session.refresh_from_db(fields=["status", "expires_at"])
    expires = session.expires_at if session.status in UploadSession.OPEN_STATUSES else None
    return offset, session.total_size_bytes, expires, tus.metadata


def terminate(owner, upload_id):
    """DELETE: the session is aborted (cleanup removes its parts) and the tail goes now."""
    session, tus = get_upload(owner, upload_id)
    sessions.abort_session(owner, session.pk)
    if tus.tail_key:
        with storage_faults("removing a tus upload's tail", session_id=str(session.pk)):
            storage.delete_temp([tus.tail_key])
        TusUpload.objects.filter(pk=session.pk, tail_key=tus.tail_key).update(
            tail_key="", tail_bytes=0, tail_part=0, tail_sha256=""
        )
