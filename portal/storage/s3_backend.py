"""Both storages on S3 (``S3Backend``), and django-storages' S3 storage with one boto3
client per process shared by every thread (``S3Storage``).

Per thread, django-storages loads its own copy of the S3 model (about 12 MB), and a
worker's RSS rose past 200 MB on S3; clients are thread-safe, so each thread gets a
resource around the one client. Imported only where the settings choose S3, so that local
disk never
imports boto3.
"""

import hashlib
import os
import threading
from dataclasses import replace

from django.conf import settings
from storages.backends import s3 as django_s3

from portal.storage import s3, s3_assembly
from portal.storage.backends import Backend, backend_faults
from portal.storage.streams import HashingReader

_BUILDING = threading.Lock()


class S3Storage(django_s3.S3Storage):
    @property
    def connection(self):
        local = self._connections
        if getattr(local, "pid", None) != os.getpid():
            local.connection = self._resource_around_shared_client()
            local.pid = os.getpid()
        return local.connection

    def _resource_around_shared_client(self):
        with _BUILDING:
            pid, first = getattr(self, "_process_resource", (None, None))
            if pid != os.getpid():
                self._connections.connection = None
                first = super().connection  # built by django-storages, from its settings
                self._process_resource = (os.getpid(), first)
        return type(first)(client=first.meta.client)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_process_resource", None)
        return state


class S3Backend(Backend):
    def __init__(self):
        self.copies_server_side = bool(settings.PORTAL_S3_COPY_ASSEMBLY)

    def write_part(self, key, stream, max_bytes, *, file_hash=None, for_copy=False):
        """Stream ``stream`` into the new temp object ``key``, hashing it (``file_hash``
        too); ``for_copy`` takes the MD5 a server-side copy is checked by."""
        md5 = hashlib.md5(usedforsecurity=False) if for_copy else None
        hashes = [digest for digest in (file_hash, md5) if digest is not None]
        stored = self.save(self.temp, key, HashingReader(stream, max_bytes, hashes))
        return replace(stored, md5=md5.hexdigest()) if md5 else stored

    def copies_parts(self, chunk_size, total_parts):
        """``PORTAL_S3_COPY_ASSEMBLY`` on, at most 10,000 parts, every part but the last at
        least 5 MiB (S3's multipart rules). Otherwise the parts stream through the process:
        small parts are a client's choice, and refusing them on S3 would break the API's
        part-size contract (PORTAL_CHUNK_SIZE_MIN) for one backend."""
        if not self.copies_server_side or total_parts > s3.MAX_COPY_PARTS:
            return False
        return total_parts == 1 or chunk_size >= s3.MIN_COPY_PART

    def assemble(self, sources, key, *, progress, file_hash=None, hashed=0, on_upload=None, **_):
        """UploadPartCopy checked by ETag, the file's sha256 continuing ``file_hash`` (which
        covers ``sources[:hashed]``) where the parts can be copied (``s3_assembly``), else
        streamed through."""
        sizes = [source.size for source in sources]
        if not self.copies_parts(min(sizes[:-1], default=0), len(sizes)):
            return super().assemble(sources, key, progress=progress)
        if file_hash is None:
            file_hash, hashed = hashlib.sha256(), 0
        return s3_assembly.copy_final(
            key,
            sources,
            file_hash=file_hash,
            hashed=hashed,
            checked_chunks=self.checked_chunks,
            progress=progress,
            on_upload=on_upload,
        )

    def read(self, storage, key, chunk_size):
        client = storage.connection.meta.client
        try:
            response = client.get_object(Bucket=storage.bucket_name, Key=s3.full_key(storage, key))
        except client.exceptions.NoSuchKey as exc:
            raise FileNotFoundError(key) from exc
        body = response["Body"]
        try:
            yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def delete(self, storage, keys):
        return s3.delete_s3(storage, keys)

    def list(self, storage):
        return s3.list_s3(storage)

    def stale_multipart_uploads(self, *, older_than):
        final = self.final
        prefix = s3.full_key(final, "")
        with backend_faults(final):
            for full, upload_id, initiated in s3.list_multipart_uploads(
                final.connection.meta.client, final.bucket_name, prefix
            ):
                if initiated < older_than:
                    yield full[len(prefix) :], upload_id

    def abort_multipart_upload(self, upload_id, key):
        s3_assembly.abort(upload_id, key)

    def final_location(self, key):
        """The bucket and the object's full key in it (the ``final/`` prefix included)."""
        final = self.final
        return {"backend": "s3", "bucket": final.bucket_name, "key": s3.full_key(final, key)}
