"""What the file-hash tests share: S3 storage with parts S3 copies, and what the saved
hash covers."""

from portal import storage
from portal.models import UploadSession
from portal.services import filehash
from portal.storage.sha256state import ResumableSha256
from tests.api_helpers import Api, make_token
from tests.conftest import apply_storage

MIB = 1024 * 1024
CHUNK = 5 * MIB  # the smallest part S3 copies: the S3 runs take the copy path


def s3_api(client, user, settings, data_dir, moto_s3):
    """The ``api`` fixture of these tests: S3 for both storages, parts up to 16 MiB."""
    apply_storage(settings, "s3", data_dir, s3=moto_s3, bucket=moto_s3.new_bucket())
    settings.PORTAL_CHUNK_SIZE_MAX = 16 * MIB
    return Api(client, make_token(user))


def saved(session_id):
    """(parts the saved hash covers, its digest if they were the whole file)."""
    row = UploadSession.objects.get(pk=session_id)
    resumed = ResumableSha256.resume(row.hash_state, filehash.hashed_bytes(row, row.hashed_parts))
    return row.hashed_parts, resumed.hexdigest() if resumed else None


class GetCounter:
    """Counts the GetObject requests of the process's S3 client (the worker's reads)."""

    def __init__(self):
        self.client = storage.temp_storage().connection.meta.client
        self.count = 0

    def __call__(self, **kwargs):
        self.count += 1

    def __enter__(self):
        self.client.meta.events.register("before-call.s3.GetObject", self)
        return self

    def __exit__(self, *exc):
        self.client.meta.events.unregister("before-call.s3.GetObject", self)
