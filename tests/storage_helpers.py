"""What the storage tests share: where a session's assembly and final file lie on local
disk, this process's open descriptors under a path, and a reader of deterministic bytes."""

import os

from portal import storage
from portal.models import UploadSession

CHUNK = 64 * 1024
SESSION = "0f0e0d0c-0b0a-0908-0706-050403020100"


def assembly_path(session_id):
    return storage.temp_storage().path(storage.assembly_key(session_id))


def final_path(session_id):
    row = UploadSession.objects.select_related("file").get(pk=session_id)
    return storage.final_storage().path(row.file.storage_key)


def open_fds_under(path):
    """This process's fds on files or directories under ``path``."""
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            targets.append(os.readlink(f"/proc/self/fd/{fd}"))
        except FileNotFoundError:
            continue  # the listing's own fd
    return sum(target.startswith(str(path)) for target in targets)


class Pattern:
    """A reader of ``size`` deterministic bytes that never holds more than one chunk."""

    def __init__(self, size):
        self.remaining = size
        self.offset = 0

    def read(self, n=-1):
        n = self.remaining if n is None or n < 0 else min(n, self.remaining)
        data = bytes((self.offset + i) % 251 for i in range(min(n, 256))) * (n // 256 + 1)
        data = data[:n]
        self.offset += n
        self.remaining -= n
        return data


def start_multipart(name):
    """An S3 multipart upload begun at ``name`` in final storage: its id."""
    final = storage.final_storage()
    client = final.connection.meta.client
    answer = client.create_multipart_upload(
        Bucket=final.bucket_name, Key=final._normalize_name(name)
    )
    return answer["UploadId"]


def multipart_ids():
    """The ids of the multipart uploads open in final storage's bucket."""
    final = storage.final_storage()
    listed = final.connection.meta.client.list_multipart_uploads(Bucket=final.bucket_name)
    return {upload["UploadId"] for upload in listed.get("Uploads", ())}
