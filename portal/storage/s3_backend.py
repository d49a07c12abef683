"""Both storages on S3 (``S3Backend``), and django-storages' S3 storage with one boto3
client per process shared by every thread (``S3Storage``): per thread, django-storages
would load its own 12 MB copy of the S3 model. Imported only where the settings choose
S3, so that local disk never imports boto3.
"""

import contextlib
import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from storages.backends import s3 as django_s3

from portal.storage import (
    MISSING,
    Backend,
    DeleteResult,
    ListedObject,
    SourceMismatch,
    StoredObject,
    backend_faults,
    describe,
    error_code,
)
from portal.storage.streams import HashingReader

DELETE_BATCH = 1000
# S3's multipart rules: every part but the last at least 5 MiB, at most 10,000 parts.
MIN_COPY_PART = 5 * 1024 * 1024
MAX_COPY_PARTS = 10_000
# UploadPartCopy requests in flight at once: the copies run inside S3, the worker only
# waits for them; 8 keep a 1 GiB file of 8 MiB parts busy without a burst of 128.
COPY_THREADS = 8
# What S3 (NoSuchKey) and emulators (a bare 404) answer for a copy of a missing object.
MISSING_CODES = ("NoSuchKey", "404", "NotFound")

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
        """``for_copy`` also takes the MD5 a server-side copy is checked by."""
        md5 = hashlib.md5(usedforsecurity=False) if for_copy else None
        hashes = [digest for digest in (file_hash, md5) if digest is not None]
        stored = self.save(self.temp, key, HashingReader(stream, max_bytes, hashes))
        return replace(stored, md5=md5.hexdigest()) if md5 else stored

    def copies_parts(self, chunk_size, total_parts):
        """Only within S3's multipart rules; smaller parts stream through the process, as
        refusing them would break the part-size contract (PORTAL_CHUNK_SIZE_MIN) on S3."""
        if not self.copies_server_side or total_parts > MAX_COPY_PARTS:
            return False
        return total_parts == 1 or chunk_size >= MIN_COPY_PART

    def assemble(self, sources, key, *, progress, file_hash=None, hashed=0, on_upload=None, **_):
        """UploadPartCopy where the parts can be copied (``on_upload(upload_id)`` is told
        before anything is copied, so cleanup can abort it after a crash), else streamed."""
        sizes = [source.size for source in sources]
        if not self.copies_parts(min(sizes[:-1], default=0), len(sizes)):
            return super().assemble(sources, key, progress=progress)
        if file_hash is None:
            file_hash, hashed = hashlib.sha256(), 0
        final = self.final
        client, dest = final.connection.meta.client, final._normalize_name(key)
        with backend_faults(final):
            upload_id = client.create_multipart_upload(Bucket=final.bucket_name, Key=dest)
            upload_id = upload_id["UploadId"]
        try:
            if on_upload is not None:
                on_upload(upload_id)
            with backend_faults(final):
                parts = self._copy_parts(
                    client, dest, upload_id, sources, file_hash, hashed, progress
                )
                _complete(client, final.bucket_name, dest, upload_id, parts)
        except BaseException:
            self.abort_multipart_upload(upload_id, key)
            raise
        return StoredObject(key=key, size=sum(sizes), sha256=file_hash.hexdigest())

    def _copy_parts(self, client, dest, upload_id, sources, file_hash, hashed, progress):
        """Copy every source in a small pool while this thread hashes the sources
        ``file_hash`` does not cover; then check each copy, by its ETag (S3's MD5 of the
        copied bytes) against the MD5 taken on arrival, else by reading it. ``progress``
        (which also renews the lease) follows every part read or copied."""
        temp = self.temp
        with ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="portal-copy") as pool:
            futures = [
                pool.submit(
                    client.upload_part_copy,
                    Bucket=self.final.bucket_name,
                    Key=dest,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource={"Bucket": temp.bucket_name, "Key": temp._normalize_name(s.key)},
                )
                for number, s in enumerate(sources, 1)
            ]
            try:
                for source in sources[hashed:]:
                    for chunk in self.checked_chunks(source):
                        file_hash.update(chunk)
                    progress(0)
                parts, copied = [], 0
                for number, (source, future) in enumerate(zip(sources, futures, strict=True), 1):
                    etag = _copied_etag(future, source)
                    read_already = number > hashed
                    if not read_already and not (source.md5 and etag.strip('"') == source.md5):
                        for _chunk in self.checked_chunks(source):
                            pass
                    copied += source.size
                    progress(copied)
                    parts.append({"ETag": etag, "PartNumber": number})
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return parts

    def read(self, storage, key, chunk_size):
        client = storage.connection.meta.client
        try:
            response = client.get_object(
                Bucket=storage.bucket_name, Key=storage._normalize_name(key)
            )
        except client.exceptions.NoSuchKey as exc:
            raise FileNotFoundError(key) from exc
        body = response["Body"]
        try:
            yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def delete(self, storage, keys):
        """DeleteObjects, up to 1,000 keys a request."""
        result = DeleteResult()
        client = storage.connection.meta.client
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            by_s3_key = {storage._normalize_name(key): key for key in batch}
            result.requests += 1
            try:
                response = client.delete_objects(
                    Bucket=storage.bucket_name,
                    Delete={"Objects": [{"Key": k} for k in by_s3_key], "Quiet": True},
                )
            except (BotoCoreError, ClientError) as exc:
                result.failed.update(dict.fromkeys(batch, describe(exc)))
                continue
            for error in response.get("Errors", []):
                key = by_s3_key.get(error.get("Key"), error.get("Key"))
                if error.get("Code") != "NoSuchKey":
                    result.failed[key] = f"{error.get('Code')}: {error.get('Message', '')}"[:200]
            result.deleted.extend(key for key in batch if key not in result.failed)
        return result

    def list(self, storage):
        client = storage.connection.meta.client
        prefix = f"{storage.location.strip('/')}/" if storage.location else ""
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=storage.bucket_name, Prefix=prefix):
            for entry in page.get("Contents", ()):
                key = entry["Key"][len(prefix) :]
                yield ListedObject(key=key, modified_at=entry["LastModified"])

    def stale_multipart_uploads(self, *, older_than):
        final = self.final
        prefix = final._normalize_name("")
        with backend_faults(final):
            paginator = final.connection.meta.client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=final.bucket_name, Prefix=prefix):
                for upload in page.get("Uploads", ()):
                    if upload["Initiated"] < older_than:
                        yield upload["Key"][len(prefix) :], upload["UploadId"]

    def abort_multipart_upload(self, upload_id, key):
        final = self.final
        with contextlib.suppress(Exception):  # best effort: cleanup retries
            final.connection.meta.client.abort_multipart_upload(
                Bucket=final.bucket_name, Key=final._normalize_name(key), UploadId=upload_id
            )

    def final_location(self, key):
        """The bucket and the object's full key in it (the ``final/`` prefix included)."""
        final = self.final
        return {"backend": "s3", "bucket": final.bucket_name, "key": final._normalize_name(key)}


def _copied_etag(future, source):
    try:
        return future.result()["CopyPartResult"]["ETag"]
    except ClientError as exc:
        if error_code(exc) in MISSING_CODES:
            raise SourceMismatch(source, MISSING) from None
        raise


def _complete(client, bucket, dest, upload_id, parts):
    """CompleteMultipartUpload, where a completion whose answer was lost (a read timeout,
    or a retry answered NoSuchUpload; moto: 500) counts as done if the object is there
    with the ETag S3 gives exactly these parts."""
    try:
        client.complete_multipart_upload(
            Bucket=bucket, Key=dest, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except (BotoCoreError, ClientError):
        try:
            stored = client.head_object(Bucket=bucket, Key=dest)["ETag"]
        except (BotoCoreError, ClientError):
            stored = None
        if stored is None or stored != _multipart_etag(parts):
            raise


def _multipart_etag(parts):
    """The MD5 of the parts' binary MD5s and their count (None where an ETag is no MD5,
    as with SSE-KMS)."""
    try:
        digests = b"".join(bytes.fromhex(part["ETag"].strip('"')) for part in parts)
    except ValueError:
        return None
    return f'"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(parts)}"'
