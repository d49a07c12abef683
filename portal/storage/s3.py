"""S3: DeleteObjects with up to 1,000 keys a request, paginated listings, full key names."""

import hashlib
from concurrent.futures import ThreadPoolExecutor

from portal.storage.objects import DeleteResult, ListedObject

S3_DELETE_BATCH = 1000


def delete_s3(storage, keys):
    from botocore.exceptions import BotoCoreError, ClientError

    result = DeleteResult()
    client = storage.connection.meta.client
    for start in range(0, len(keys), S3_DELETE_BATCH):
        batch = keys[start : start + S3_DELETE_BATCH]
        by_s3_key = {full_key(storage, key): key for key in batch}
        result.requests += 1
        try:
            response = client.delete_objects(
                Bucket=storage.bucket_name,
                Delete={"Objects": [{"Key": k} for k in by_s3_key], "Quiet": True},
            )
        except (BotoCoreError, ClientError) as exc:
            reason = describe(exc)
            result.failed.update({key: reason for key in batch})
            continue
        for error in response.get("Errors", []):
            key = by_s3_key.get(error.get("Key"), error.get("Key"))
            if error.get("Code") != "NoSuchKey":
                result.failed[key] = f"{error.get('Code')}: {error.get('Message', '')}"[:200]
        result.deleted.extend(key for key in batch if key not in result.failed)
    return result


def list_s3(storage):
    client = storage.connection.meta.client
    prefix = f"{storage.location.strip('/')}/" if storage.location else ""
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=storage.bucket_name, Prefix=prefix):
        for entry in page.get("Contents", ()):
            yield ListedObject(key=entry["Key"][len(prefix) :], modified_at=entry["LastModified"])


def full_key(storage, key):
    return storage._normalize_name(key)


def describe(exc):
    """A backend error in a few words: its class and the S3 error code or OS reason."""
    reason = error_code(exc) or getattr(exc, "strerror", None) or ""
    return f"{type(exc).__name__}: {reason}".rstrip(": ")


def error_code(exc):
    """The S3 error code of a botocore ``ClientError`` (None for any other error)."""
    return getattr(exc, "response", {}).get("Error", {}).get("Code")


# S3's multipart rules: every part but the last at least 5 MiB, at most 10,000 parts.
MIN_COPY_PART = 5 * 1024 * 1024
MAX_COPY_PARTS = 10_000
# UploadPartCopy requests in flight at once: the copies run inside S3, the worker only
# waits for them; 8 keep a 1 GiB file of 8 MiB parts busy without a burst of 128.
COPY_THREADS = 8
# What S3 (NoSuchKey) and emulators (a bare 404) answer for a copy of a missing object.
MISSING_CODES = ("NoSuchKey", "404", "NotFound")


def copy_assemble(client, bucket, dest, upload_id, sources, while_copying, copied):
    """Copy ``sources`` (``(bucket, key)`` in part order) into the multipart upload in a
    small pool; meanwhile run ``while_copying()`` in this thread, then ``copied(index,
    etag)`` for each copy in part order as it completes; return the parts list
    ``complete_multipart_upload`` wants.

    Nothing is copied through this process. If a callback raises, copies not yet started
    are cancelled and the error propagates (the caller aborts the upload).
    """
    with ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="portal-copy") as pool:
        futures = [
            pool.submit(
                client.upload_part_copy,
                Bucket=bucket,
                Key=dest,
                UploadId=upload_id,
                PartNumber=number,
                CopySource={"Bucket": source_bucket, "Key": source_key},
            )
            for number, (source_bucket, source_key) in enumerate(sources, 1)
        ]
        try:
            while_copying()
            parts = []
            for index, future in enumerate(futures):
                etag = _copied_etag(future, index)
                copied(index, etag)
                parts.append({"ETag": etag, "PartNumber": index + 1})
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        return parts


class CopySourceMissing(FileNotFoundError):
    """The temp object of part ``index`` (0-based) was not there to copy."""

    def __init__(self, index):
        super().__init__(f"copy source {index} is missing")
        self.index = index


def _copied_etag(future, index):
    from botocore.exceptions import ClientError

    try:
        return future.result()["CopyPartResult"]["ETag"]
    except ClientError as exc:
        if error_code(exc) in MISSING_CODES:
            raise CopySourceMissing(index) from exc
        raise


def list_multipart_uploads(client, bucket, prefix):
    """Every incomplete multipart upload under ``prefix``: ``(key, upload_id, initiated)``."""
    paginator = client.get_paginator("list_multipart_uploads")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", ()):
            yield upload["Key"], upload["UploadId"], upload["Initiated"]


def complete_upload(client, bucket, dest, upload_id, parts):
    """CompleteMultipartUpload, where a completion whose answer was lost counts as done.

    S3 may take long to complete a large upload. When the client's read timeout expires
    first, the answer is lost, or botocore sends the request again and S3 answers the
    retry of a completion that succeeded with NoSuchUpload (moto: 500). Either way the
    object may be there, with the ETag S3 gives exactly this list of parts: that is
    checked before the error is let go.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client.complete_multipart_upload(
            Bucket=bucket, Key=dest, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except (BotoCoreError, ClientError):
        try:
            stored = client.head_object(Bucket=bucket, Key=dest)["ETag"]
        except (BotoCoreError, ClientError):
            stored = None
        if stored is None or stored != multipart_etag(parts):
            raise


def multipart_etag(parts):
    """The ETag S3 gives a completed multipart upload: the MD5 of its parts' binary MD5s
    and the count (None where a part's ETag is no MD5, as with SSE-KMS)."""
    try:
        digests = b"".join(bytes.fromhex(part["ETag"].strip('"')) for part in parts)
    except ValueError:
        return None
    return f'"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(parts)}"'
