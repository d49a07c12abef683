"""Helpers for the upload API tests: an authenticated client and upload shortcuts."""

import hashlib
import json
import math

from portal.services.tokens import create_token

BASE = "/api/v1/uploads/sessions"


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def make_token(user, name=""):
    return create_token(user, name=name)[1]


class Api:
    """Django's test client with a bearer token and the API's paths."""

    def __init__(self, client, token):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def create(self, **data):
        return self.client.post(
            BASE, data=json.dumps(data), content_type="application/json", headers=self.headers
        )

    def put(self, session_id, number, body, **extra):
        return self.client.put(
            f"{BASE}/{session_id}/parts/{number}",
            data=body,
            content_type="application/octet-stream",
            headers=self.headers,
            **extra,
        )

    def status(self, session_id):
        return self.client.get(f"{BASE}/{session_id}", headers=self.headers)

    def finalize(self, session_id):
        return self.client.post(f"{BASE}/{session_id}/finalize", headers=self.headers)

    def abort(self, session_id):
        return self.client.delete(f"{BASE}/{session_id}", headers=self.headers)

    def start(self, data, chunk, **fields):
        """Create a session for ``data`` with part size ``chunk``; return its JSON."""
        fields.setdefault("filename", "data.bin")
        response = self.create(size_bytes=len(data), chunk_size_bytes=chunk, **fields)
        assert response.status_code in (200, 201), response.content
        return response.json()

    def upload(self, session_id, data, chunk, order=None):
        parts = split(data, chunk)
        for number in order or range(1, len(parts) + 1):
            response = self.put(session_id, number, parts[number - 1])
            assert response.status_code in (200, 201), response.content


def split(data, chunk):
    return [data[i * chunk : (i + 1) * chunk] for i in range(math.ceil(len(data) / chunk))]


def error_code(response):
    return response.json()["error"]["code"]
