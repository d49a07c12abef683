"""The catch-up's claim on a session (``filehash.CLAIM_SECONDS``) and what a failing
catch-up leaves in the log, on local disk: a request that dies while catching up holds
the session only that long, then another request takes the hash on."""

import logging
import os
from datetime import timedelta

import time_machine
from django.db import OperationalError
from django.utils import timezone

from portal import storage
from portal.models import UploadPart
from portal.services import filehash
from portal.storage.local_backend import LocalBackend
from tests.api_helpers import sha256
from tests.file_hash_helpers import CHUNK as S3_CHUNK
from tests.file_hash_helpers import GetCounter, s3_api, saved
from tests.storage_helpers import CHUNK


def test_a_catch_up_holds_the_session_for_claim_seconds_and_no_longer(local_api, monkeypatch):
    """While the first catch-up is stuck on its first part, another request's catch-up
    leaves the session alone a second before the claim runs out, and takes the hash over
    a second after."""
    data = os.urandom(3 * CHUNK)
    session = local_api.start(data, CHUNK)["id"]
    local_api.upload(session, data, CHUNK, order=[2, 3])
    hash_part = LocalBackend.hash_part
    seen = []

    def stuck_holder(self, source, digest):
        if not seen:
            seen.append("holder stuck")
            for after in (filehash.CLAIM_SECONDS - 1, filehash.CLAIM_SECONDS + 1):
                with time_machine.travel(timezone.now() + timedelta(seconds=after), tick=False):
                    filehash.catch_up(session)  # another request
                    seen.append(saved(session)[0])
        return hash_part(self, source, digest)

    monkeypatch.setattr(LocalBackend, "hash_part", stuck_holder)
    with time_machine.travel(timezone.now(), tick=False):
        local_api.upload(session, data, CHUNK, order=[1])  # its catch-up takes the claim

    assert seen == ["holder stuck", 1, 3]
    assert saved(session) == (3, sha256(data))
    assert local_api.finalize(session).json()["file"]["sha256"] == sha256(data)


def test_a_failing_catch_up_logs_its_cause_with_the_traceback(local_api, monkeypatch, caplog):
    """The part is recorded all the same; the operator sees why the hash fell behind."""

    def database_locked(*args):
        raise OperationalError("database is locked")

    monkeypatch.setattr(filehash, "_claim", database_locked)
    data = os.urandom(2 * CHUNK)
    session = local_api.start(data, CHUNK)["id"]
    local_api.upload(session, data, CHUNK, order=[2])

    with caplog.at_level(logging.WARNING, logger="portal.services.filehash"):
        assert local_api.put(session, 1, data[:CHUNK]).status_code == 201
    [record] = [r for r in caplog.records if r.name == "portal.services.filehash"]
    assert record.exc_info[0] is OperationalError
    assert record.session_id == session
    assert "database is locked" in caplog.text


def test_a_catch_up_reads_a_part_that_fails_its_check_once_and_stops(
    client, user, settings, data_dir, moto_s3
):
    """The hash cannot pass a changed part: the request reads it once and ends, rather
    than reading it again and again until its byte budget is spent."""
    s3 = s3_api(client, user, settings, data_dir, moto_s3)
    data = os.urandom(3 * S3_CHUNK)
    session = s3.start(data, S3_CHUNK)["id"]
    s3.upload(session, data, S3_CHUNK, order=[2, 3])
    key = f"temp/{UploadPart.objects.get(part_number=2).temp_key}"
    moto_s3.client().put_object(
        Bucket=storage.temp_storage().bucket_name, Key=key, Body=bytes(S3_CHUNK)
    )

    with GetCounter() as gets:
        s3.upload(session, data, S3_CHUNK, order=[1])

    assert gets.count == 1
    assert saved(session) == (1, sha256(data[:S3_CHUNK]))
