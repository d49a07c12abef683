"""Assembling on S3: S3 builds the final object from the temp objects by UploadPartCopy.

No byte passes through the worker for the copy; a copy is checked by its ETag (S3's MD5 of
the copied bytes) against the MD5 taken on arrival, and the file's sha256 resumes the
hash saved during the upload. A part without a matching MD5, or after the saved hash, is
read once and its sha256 checked.
"""

import contextlib
import itertools

from portal.storage import s3
from portal.storage.backends import backend_faults, final_storage, temp_storage
from portal.storage.objects import MISSING, SourceMismatch, StoredObject


def copy_final(key, sources, *, file_hash, hashed, checked_chunks, progress, on_upload):
    """Build the final object ``key`` from ``sources`` with UploadPartCopy.

    ``file_hash`` covers ``sources[:hashed]``; ``checked_chunks(source)`` yields a
    source's bytes and raises ``SourceMismatch`` at the end when they do not match.
    ``on_upload(upload_id)`` is told the multipart upload before anything is copied (a
    crash then leaves a recorded id that cleanup can abort); on any failure the upload is
    aborted before the exception propagates, and the object only appears once complete.
    """
    temp, final = temp_storage(), final_storage()
    client = final.connection.meta.client
    dest = s3.full_key(final, key)
    with backend_faults(final):
        upload_id = client.create_multipart_upload(Bucket=final.bucket_name, Key=dest)["UploadId"]
    check = _CopyCheck(sources, file_hash, hashed, checked_chunks, progress)
    try:
        if on_upload is not None:
            on_upload(upload_id)
        copies = [(temp.bucket_name, s3.full_key(temp, source.key)) for source in sources]
        with backend_faults(final):
            try:
                parts = s3.copy_assemble(
                    client,
                    final.bucket_name,
                    dest,
                    upload_id,
                    copies,
                    check.hash_rest,
                    check.copied,
                )
            except s3.CopySourceMissing as exc:
                raise SourceMismatch(sources[exc.index], MISSING) from None
            s3.complete_upload(client, final.bucket_name, dest, upload_id, parts)
    except BaseException:
        abort(upload_id, key)
        raise
    return StoredObject(key=key, size=check.offsets[-1], sha256=file_hash.hexdigest())


def abort(upload_id, key):
    """Give up a multipart upload of the final storage (best effort: cleanup retries)."""
    final = final_storage()
    with contextlib.suppress(Exception):
        final.connection.meta.client.abort_multipart_upload(
            Bucket=final.bucket_name, Key=s3.full_key(final, key), UploadId=upload_id
        )


class _CopyCheck:
    """The worker's side of a copy assembly: the rest of the file's hash, then each copy's
    check. ``progress`` (which also renews the lease) is called after every part read or
    copied; its figure is the bytes of the parts whose copies are checked."""

    def __init__(self, sources, file_hash, hashed, checked_chunks, progress):
        self.sources, self.file_hash, self.hashed = sources, file_hash, hashed
        self.checked_chunks, self.progress = checked_chunks, progress
        self.offsets = list(itertools.accumulate((s.size for s in sources), initial=0))

    def hash_rest(self):
        """Read the parts the saved hash does not cover, in order (while S3 copies)."""
        for index in range(self.hashed, len(self.sources)):
            for chunk in self.checked_chunks(self.sources[index]):
                self.file_hash.update(chunk)
            self.progress(0)

    def copied(self, index, etag):
        """Part ``index`` was copied with ``etag``: checked, by its MD5 or by reading it."""
        source = self.sources[index]
        read_already = index >= self.hashed
        if not read_already and not (source.md5 and etag.strip('"') == source.md5):
            for _chunk in self.checked_chunks(source):
                pass
        self.progress(self.offsets[index + 1])
