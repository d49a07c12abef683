"""Helpers for the tus tests: raw tus requests through Django's test client."""

import base64
import hashlib
import time

from portal.models import IngestFile
from tests import objects

CHUNK = 10  # the ``tus`` fixture's part size: a few bytes make several parts

TUS = "/api/v1/tus/"
VERSION = {"Tus-Resumable": "1.0.0"}
OFFSET_STREAM = "application/offset+octet-stream"


def upload_id(path):
    """The id of the upload at a tus ``Location`` path (the JSON API's session id)."""
    return path.rsplit("/", 1)[1]


def metadata(**values):
    """An ``Upload-Metadata`` header from ``key=str`` (None: a key without a value)."""
    return ",".join(
        key if value is None else f"{key} {base64.b64encode(value.encode()).decode()}"
        for key, value in values.items()
    )


class Tus:
    """Django's test client speaking tus with a bearer token."""

    def __init__(self, client, token):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}", **VERSION} if token else VERSION

    def create(self, length, *, body=b"", **headers):
        headers = {"Upload-Length": str(length), **headers}
        return self.client.generic(
            "POST",
            TUS,
            data=body,
            content_type=OFFSET_STREAM if body else "",
            headers={**self.headers, **headers},
        )

    def start(self, length, **headers):
        """A new upload's path (asserting the 201)."""
        response = self.create(length, **headers)
        assert response.status_code == 201, response.content
        return response["Location"].removeprefix("http://testserver")

    def head(self, path, **headers):
        return self.client.head(path, headers={**self.headers, **headers})

    def patch(self, path, offset, body, *, content_type=OFFSET_STREAM, **headers):
        return self.client.generic(
            "PATCH",
            path,
            data=body,
            content_type=content_type,
            headers={**self.headers, "Upload-Offset": str(offset), **headers},
            CONTENT_TYPE=content_type,  # the test client leaves it out of an empty body
        )

    def delete(self, path):
        return self.client.delete(path, headers=self.headers)

    def offset(self, path):
        response = self.head(path)
        assert response.status_code == 200, response.content
        return int(response["Upload-Offset"])


def b64(digest):
    return base64.b64encode(digest).decode()


def stored_file_bytes():
    """The one stored file's bytes."""
    file = IngestFile.objects.get()
    assert file.status == IngestFile.Status.STORED
    return b"".join(objects.iter_final(file.storage_key))


def stored_sha256(wait_seconds=120):
    """The stored file's sha256, checked against its bytes; the assembly may still run
    after the last PATCH's answer (``PORTAL_FINALIZE_WAIT_SECONDS``): wait for it."""
    deadline = time.monotonic() + wait_seconds
    file = IngestFile.objects.get()
    while file.status == IngestFile.Status.UPLOADING and time.monotonic() < deadline:
        time.sleep(0.2)
        file.refresh_from_db()
    assert file.status == IngestFile.Status.STORED
    digest = hashlib.sha256()
    for chunk in objects.iter_final(file.storage_key):
        digest.update(chunk)
    assert digest.hexdigest() == file.sha256
    return file.sha256


class Breaking:
    """A request body that gives ``data``, then fails as a socket does (``error``), or
    ends (``None``) before its Content-Length."""

    def __init__(self, data, error=None):
        self.data, self.error = data, error

    def read(self, size=-1):
        if not self.data and self.error is not None:
            raise self.error
        data, self.data = self.data[:size], self.data[size:]
        return data

    readline = read  # Django's LimitedStream has it


def patch_breaking(tus, path, offset, body, length):
    """A PATCH whose body (``Breaking``) announces ``length`` bytes."""
    return tus.client.generic(
        "PATCH",
        path,
        content_type="application/offset+octet-stream",
        headers={**tus.headers, "Upload-Offset": str(offset)},
        CONTENT_LENGTH=str(length),
        CONTENT_TYPE="application/offset+octet-stream",
        **{"wsgi.input": body},
    )
