"""S3: DeleteObjects with up to 1,000 keys a request, paginated listings, full key names."""

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
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    reason = code or getattr(exc, "strerror", None) or ""
    return f"{type(exc).__name__}: {reason}".rstrip(": ")
