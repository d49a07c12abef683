"""tus PATCH: the bytes at the upload's offset, recorded as the JSON API's parts are; what
follows the last whole part is the upload's tail, which the next PATCH completes. So a
broken PATCH keeps every byte that reached storage (with ``Upload-Checksum``: none)."""

import contextlib
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from portal import locks, storage
from portal.models import TusUpload, UploadSession
from portal.parts import part_offset, part_size
from portal.services import filehash, finalize, guards, part_sql
from portal.services.errors import BadRequest, Conflict, NotFound, TooLarge
from portal.services.finalize.assembly import part_rows
from portal.services.guards import storage_faults
from portal.services.sessions import PART_FIELDS, ensure_open, ttl
from portal.services.tus import (
    ChecksumMismatch,
    Locked,
    contiguous_parts,
    current_offset,
    ensure_usable,
    get_upload,
    parse_checksum,
    upload_pk,
)
from portal.services.tus_stream import Body, PartBytes, TailMissing, tail_chunks
from portal.storage import sha256state
from portal.storage.sha256state import ResumableSha256

OPEN = UploadSession.OPEN_STATUSES


@dataclass(frozen=True)
class PatchResult:
    offset: int
    expires_at: datetime | None
    # Why the body ended before its Content-Length ("" when it did not).
    broken: str = ""


def receive_patch(owner, upload_id, *, offset, length, stream, checksum=None):
    """Store ``length`` bytes of ``stream`` at ``offset``. The lock comes before the read of
    the upload (read once); a request that finds it taken still answers 404 and 400 first."""
    pk = upload_pk(upload_id)
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(locks.hold(f"tus:{pk}"))
        except locks.LockBusy:
            get_upload(owner, pk)
            parse_checksum(checksum)
            raise Locked(
                "another PATCH of this upload is in progress; ask HEAD for the offset and "
                "resume from there once it ended"
            ) from None
        return _patch(owner, pk, offset, length, stream, checksum)


def _patch(owner, pk, offset, length, stream, checksum):
    """The checklist, under the upload's lock."""
    session, tus = get_upload(owner, pk)
    checked = parse_checksum(checksum)
    ensure_usable(session)
    current = current_offset(session, tus)
    if offset != current:
        raise Conflict(
            f"Upload-Offset {offset} is not the upload's offset {current}; resume from the "
            "offset HEAD gives",
            code="offset_mismatch",
            details={"offset": current},
        )
    if offset + length > session.total_size_bytes:
        raise TooLarge(
            f"{length} bytes at offset {offset} go past Upload-Length {session.total_size_bytes}",
            code="exceeds_upload_length",
        )
    context = {"session_id": str(session.pk)}
    if session.status in OPEN and length:
        with storage_faults("storing a tus PATCH", **context):
            guards.ensure_room("temp", length)
            file_hash = _file_hash(session, tus, offset, length)
            writer = _Writer(session, tus, file_hash, deferred=checked is not None)
            body = Body(stream, length, [h for h in (checked and checked[0], file_hash) if h])
            writer.run(body, offset, checked)
        offset += body.taken if not checked else (0 if body.broken else length)
        if body.broken:
            return PatchResult(offset, _open_until(session), body.broken)
    if session.status in OPEN and offset == session.total_size_bytes:
        finalize.finalize_session(owner, session.pk)
        session.refresh_from_db(fields=["status", "expires_at"])
    return PatchResult(offset, _open_until(session))


def _open_until(session):
    """The expiry of an open upload (kept up to date by the writer), None once it is not."""
    return session.expires_at if session.status in OPEN else None


def _file_hash(session, tus, offset, length):
    """The file's hash over its first ``offset`` bytes when metadata names a ``sha256``:
    resumed, else read back (where the state can be saved, or this PATCH may end it)."""
    if not tus.sha256:
        return None
    saving = sha256state.available()
    if saving and offset == 0:
        return ResumableSha256()
    if saving and tus.hashed_bytes == offset:
        resumed = ResumableSha256.resume(tus.hash_state, offset)
        if resumed is not None:
            return resumed
    if not saving and offset + length < session.total_size_bytes:
        return None
    digest = ResumableSha256() if saving else hashlib.sha256()
    done = contiguous_parts(session.pk)
    for number, *recorded in part_rows(session.pk)[:done]:
        source = storage.part_source(number, *recorded)
        storage.backend().hash_part(source, digest)
    if tus.tail_key and tus.tail_part == done + 1:
        for chunk in tail_chunks(tus.tail_key, tus.tail_bytes):
            digest.update(chunk)
    return digest


_ASIDE = object()


class _Writer:
    """Cuts the body at part boundaries into temp objects and records them."""

    def __init__(self, session, tus, file_hash, *, deferred):
        self.session, self.tus, self.file_hash, self.deferred = session, tus, file_hash, deferred
        self.whole = []  # (part number, StoredObject, file hash or None): not yet recorded
        self.tail = None  # (part number, StoredObject) of a part's first bytes
        self.placed = []  # (PartRange, its ExitStack) of the parts in ``whole`` in place
        self.saves_file_hash = filehash.applies(session)

    def run(self, body, offset, checked):
        chunk = self.session.chunk_size_bytes
        part, within = offset // chunk + 1, offset % chunk
        try:
            while body.left and not body.broken:
                if not self._write(part, within, body):  # the body ended inside the part
                    break
                part, within = part + 1, 0
                if not self.deferred:
                    self._record()
            if self.deferred:
                self._verify(body, checked)
            self._record()
        except BaseException:
            self._discard()
            raise

    def _write(self, part, within, body):
        """Write part ``part`` (its first ``within`` bytes from the tail): True when whole,
        False when it is the new tail, None when the body gave nothing for it."""
        expected = part_size(part, self.session.chunk_size_bytes, self.session.total_size_bytes)
        part_hash = filehash.for_part(self.session, part) if self.saves_file_hash else None
        source = PartBytes(self.tus.tail_key if within else "", within, body, expected - within)
        try:
            if body.left >= expected - within:
                placed = self._write_in_place(part, expected, source, part_hash)
                if placed is not _ASIDE:
                    return placed
            stored = storage.write_temp_part(
                source,
                session_id=self.session.pk,
                part_number=part,
                max_bytes=expected,
                file_hash=part_hash,
                for_copy=filehash.applies(self.session),
            )
        except TailMissing:
            self._forget_tail()
            raise Conflict(
                "the upload's last received bytes are gone from storage; ask HEAD for the "
                "offset and resume from there",
                code="offset_mismatch",
            ) from None
        if not source.taken:
            storage.delete_temp([stored.key])
            return None
        if stored.size == expected:
            self._whole(part, stored, part_hash)
            return True
        self.tail = (part, stored)
        return False

    def _whole(self, part, stored, part_hash):
        self.whole.append((part, stored, part_hash))
        if part_hash is not None:  # the next part's bytes go on from this hash
            self.session.hashed_parts, self.session.hash_state = part, part_hash.state()

    def _write_in_place(self, part, expected, source, part_hash):
        """Local disk: the part into its range of the session's file, held until recorded;
        where the file hash takes the part on, the part keeps no sha256 of its own (only a
        replay, refused here, would compare it). What ``_write`` answers, or ``_ASIDE``.
        A body that breaks off inside the part leaves the arrived bytes as the tail."""
        held = contextlib.ExitStack()
        offset = part_offset(part, self.session.chunk_size_bytes)
        try:
            place = held.enter_context(
                storage.backend().part_range(self.session.pk, offset, expected)
            )
        except storage.RangeBusy:  # the JSON API is writing it
            raise _changed_elsewhere() from None
        if place is None:
            return _ASIDE
        status, recorded = part_sql.range_state(self.session.pk, part)
        if status not in OPEN or recorded:
            held.close()
            current = UploadSession.objects.filter(pk=self.session.pk).first()
            if recorded or current is None:
                raise _changed_elsewhere()
            ensure_open(current)  # closed meanwhile: its 409 or 410
        try:
            stored = place.write(
                source, max_bytes=expected, file_hash=part_hash, own_hash=part_hash is None
            )
        except BaseException:
            held.close()
            raise
        if stored.size == expected:
            self._whole(part, stored, part_hash)
            self.placed.append((place, held))
            return True
        try:
            if source.taken:
                self.tail = (part, place.copy_to_temp(stored.size, part_number=part))
        finally:
            place.release()
            held.close()
        return False if source.taken else None

    def _verify(self, body, checked):
        """With an ``Upload-Checksum``, the whole body matched or nothing is recorded."""
        if body.broken:
            raise BadRequest(
                f"the body broke off ({body.broken}); nothing of it was kept (it had an "
                "Upload-Checksum, which only the whole body can match)",
                code="incomplete_body",
            )
        hasher, digest = checked
        if not hmac.compare_digest(hasher.digest(), digest):
            raise ChecksumMismatch(
                f"the body's {hasher.name} differs from Upload-Checksum; nothing of it was kept"
            )

    def _record(self):
        """Record the whole parts and the tail in one transaction (409 when the JSON API
        recorded one meanwhile); the old tail goes once nothing points to it."""
        if not self.whole and self.tail is None:
            return
        self._check_file_hash()
        old_tail = self.tus.tail_key
        now = timezone.now()
        try:
            with transaction.atomic():
                self._record_locked(now, now + ttl())
        except IntegrityError:
            raise _changed_elsewhere() from None
        self.whole = []
        self.tail = None
        self._let_go(release=False)
        if old_tail and old_tail != self.tus.tail_key:
            with contextlib.suppress(storage.StorageUnavailable):  # the sweep removes it
                storage.delete_temp([old_tail])

    def _record_locked(self, now, expires_at):
        locked = part_sql.lock_session(self.session.pk, PART_FIELDS)
        if locked is None:
            raise NotFound("no such tus upload", code="upload_not_found")
        ensure_open(locked, now)
        for number, stored, part_hash in self.whole:
            part_sql.insert_part(self.session.pk, number, stored, now)
            saved = filehash.saved_fields(locked, number, part_hash)
            part_sql.count_part(
                self.session.pk, stored.size, expires_at=expires_at, now=now, hashed=saved
            )
            locked.hashed_parts = saved.get("hashed_parts", locked.hashed_parts)
        self._save_tus(now, expires_at)
        if self.whole or self.tail is not None:
            self.session.expires_at = expires_at

    def _save_tus(self, now, expires_at):
        """The tus row's tail and hash fields, written only when they changed."""
        part, stored = self.tail or (0, None)
        fields = {
            "tail_key": stored.key if stored else "",
            "tail_part": part,
            "tail_bytes": stored.size if stored else 0,
            "tail_sha256": stored.sha256 if stored else "",
        }
        if isinstance(self.file_hash, ResumableSha256):
            fields.update(hash_state=self.file_hash.state(), hashed_bytes=self.file_hash.length)
        changed = {
            name: value for name, value in fields.items() if getattr(self.tus, name) != value
        }
        if changed:
            TusUpload.objects.filter(pk=self.session.pk).update(**changed)
        if stored is not None:
            UploadSession.objects.filter(pk=self.session.pk).update(
                expires_at=expires_at, updated_at=now
            )
        for name, value in changed.items():
            setattr(self.tus, name, value)

    def _check_file_hash(self):
        """Before the last part is recorded: 460 unless the file's sha256 is the metadata's."""
        last = self.session.total_parts
        if not self.tus.sha256 or not any(number == last for number, *_ in self.whole):
            return
        actual = self.file_hash.hexdigest() if self.file_hash is not None else ""
        if actual != self.tus.sha256:
            raise ChecksumMismatch(
                f"the file's sha256 is {actual or 'unknown'}, its Upload-Metadata sha256 says "
                f"{self.tus.sha256}; the last part was not kept and nothing was stored",
                code="sha256_mismatch",
            )

    def _let_go(self, *, release):
        """Let go of the ranges written in place: recorded, or (``release``) given back."""
        for place, held in self.placed:
            if release:
                place.release()
            held.close()
        self.placed = []

    def _discard(self):
        keys = [stored.key for _, stored, _ in self.whole if stored.offset is None]
        if self.tail is not None:
            keys.append(self.tail[1].key)
        self.whole, self.tail = [], None
        self._let_go(release=True)
        if keys:
            with contextlib.suppress(storage.StorageUnavailable):
                storage.delete_temp(keys)

    def _forget_tail(self):
        TusUpload.objects.filter(pk=self.session.pk, tail_key=self.tus.tail_key).update(
            tail_key="", tail_part=0, tail_bytes=0, tail_sha256="", hash_state=None, hashed_bytes=0
        )


def _changed_elsewhere():
    return Conflict(
        "parts of this upload were sent through the JSON API meanwhile; use one API per upload",
        code="upload_changed_elsewhere",
    )
