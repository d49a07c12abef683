"""The file's hash caught up over parts that arrived before their turn (a client
uploading in parallel): runs of parts, the claim, the bounds, and what a part that
cannot be hashed leaves (portal.services.filehash.catch_up)."""

import io
import os
import random
import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import OperationalError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal import storage
from portal.models import UploadPart, UploadSession
from portal.services import chunks, filehash
from portal.services.part_sql import P, S
from tests.api_helpers import Api, error_code, make_token, sha256
from tests.conftest import apply_storage
from tests.file_hash_helpers import CHUNK, MIB, GetCounter, s3_api, saved


@pytest.fixture
def api(client, user, settings, data_dir, moto_s3):
    return s3_api(client, user, settings, data_dir, moto_s3)


def database_locked(*args):
    """A database failure where one cannot be staged on a live connection."""
    raise OperationalError("database is locked")


def test_parts_out_of_order_are_caught_up_by_the_request_that_completes_a_run(api):
    data = os.urandom(4 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=[2, 3])
    assert saved(session) == (0, None)

    # Part 1: hashed on its way in, then parts 2 and 3 read back and hashed on.
    api.upload(session, data, CHUNK, order=[1])
    assert saved(session) == (3, sha256(data[: 3 * CHUNK]))
    api.upload(session, data, CHUNK, order=[4])
    response = api.finalize(session)
    assert response.json()["file"]["sha256"] == sha256(data)


@pytest.mark.parametrize("waiting", [1, 3])
def test_a_catch_up_takes_a_run_of_parts_in_two_looks_and_two_claim_updates(api, waiting):
    """One look finds every part that is in without a gap; claim, hash them, and one
    UPDATE that moves the hash over all of them and lets go of the claim: a parallel
    client's parts pay for these once a run, not once a part (docs/upload-performance.md)."""
    data = os.urandom((waiting + 1) * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=list(range(2, waiting + 2)))

    with CaptureQueriesContext(connection) as queries:
        api.upload(session, data, CHUNK, order=[1])

    sql = [query["sql"] for query in queries.captured_queries]
    assert saved(session) == (waiting + 1, sha256(data))
    assert len([q for q in sql if q.startswith("UPDATE") and "hash_claimed_until" in q]) == 2
    looks = [q for q in sql if f"p.{P.part_number} > s.{S.hashed_parts}" in q]
    assert len(looks) == 2
    assert UploadSession.objects.get(pk=session).hash_claimed_until is None


def test_a_run_stops_before_a_part_that_changed_and_saves_the_parts_before_it(api, moto_s3):
    data = os.urandom(4 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=[2, 3, 4])
    part = UploadPart.objects.get(part_number=3)
    bucket = storage.temp_storage().bucket_name
    moto_s3.client().put_object(Bucket=bucket, Key=f"temp/{part.temp_key}", Body=bytes(CHUNK))

    api.upload(session, data, CHUNK, order=[1])

    assert saved(session) == (2, sha256(data[: 2 * CHUNK]))  # part 3 failed its check
    assert UploadSession.objects.get(pk=session).hash_claimed_until is None
    response = api.finalize(session)
    assert (response.status_code, error_code(response)) == (410, "part_corrupt")
    assert "part 3" in UploadSession.objects.get().failure_reason


def test_a_part_behind_a_missing_one_does_not_look_for_parts_to_hash(api):
    """The request that records the missing part looks after its commit and finds the
    parts behind it: a look before that would find nothing."""
    data = os.urandom(3 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=[3])

    with CaptureQueriesContext(connection) as queries:
        api.upload(session, data, CHUNK, order=[2])
    assert [q for q in queries.captured_queries if "hash_claimed_until" in q["sql"]] == []

    api.upload(session, data, CHUNK, order=[1])
    assert saved(session) == (3, sha256(data))


def test_parts_a_bounded_catch_up_left_are_taken_up_by_the_next_request(api, monkeypatch):
    monkeypatch.setattr(filehash, "CATCH_UP_BYTES", 2 * CHUNK)
    data = os.urandom(6 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=[2, 3, 4, 5, 1])
    assert saved(session) == (3, sha256(data[: 3 * CHUNK]))

    api.upload(session, data, CHUNK, order=[6])  # part 4, which the hash needs, is in

    assert saved(session) == (5, sha256(data[: 5 * CHUNK]))
    assert api.finalize(session).json()["file"]["sha256"] == sha256(data)


def test_a_run_ends_at_the_first_gap(api):
    data = os.urandom(5 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=[2, 3, 5, 1])

    assert saved(session) == (3, sha256(data[: 3 * CHUNK]))
    api.upload(session, data, CHUNK, order=[4])
    assert saved(session) == (5, sha256(data))


def test_a_claim_for_a_part_the_hash_has_taken_in_is_refused(api):
    """A request that looked before the hash moved on does not hash the part again: the
    claim names the part, and whoever moved the hash looks for the next one itself."""
    data = os.urandom(2 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=[1])

    assert filehash._claim(session, 1) is None
    assert UploadSession.objects.get(pk=session).hash_claimed_until is None
    assert filehash._claim(session, 2) is not None


def test_a_request_catches_up_a_bounded_number_of_bytes(api, monkeypatch):
    monkeypatch.setattr(filehash, "CATCH_UP_BYTES", 2 * CHUNK)
    data = os.urandom(5 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=[2, 3, 4, 5, 1])

    assert saved(session) == (3, sha256(data[: 3 * CHUNK]))  # part 1, then two caught up
    assert api.finalize(session).json()["file"]["sha256"] == sha256(data)


def test_one_request_catches_up_at_a_time_and_a_dead_holders_claim_runs_out(api):
    data = os.urandom(3 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=[2, 3])
    held_until = timezone.now() + timedelta(seconds=filehash.CLAIM_SECONDS)
    UploadSession.objects.filter(pk=session).update(hash_claimed_until=held_until)

    with CaptureQueriesContext(connection) as queries:
        api.upload(session, data, CHUNK, order=[1])
    assert saved(session) == (1, sha256(data[:CHUNK]))  # 2 and 3 left to the holder
    claims = [q for q in queries.captured_queries if "hash_claimed_until" in q["sql"]]
    assert [q for q in claims if q["sql"].startswith("UPDATE")] == []  # the look saw it held

    with time_machine.travel(held_until + timedelta(seconds=1)):
        filehash.catch_up(session)  # the holder died: the claim ran out
    assert saved(session) == (3, sha256(data))
    assert UploadSession.objects.get(pk=session).hash_claimed_until is None


def test_a_part_changed_before_its_catch_up_is_not_hashed_and_fails_at_finalize(api, moto_s3):
    data = os.urandom(3 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=[2, 3])
    part = UploadPart.objects.get(part_number=2)
    bucket = storage.temp_storage().bucket_name
    moto_s3.client().put_object(Bucket=bucket, Key=f"temp/{part.temp_key}", Body=bytes(CHUNK))

    api.upload(session, data, CHUNK, order=[1])

    assert saved(session) == (1, sha256(data[:CHUNK]))  # part 2 failed its check
    assert UploadSession.objects.get(pk=session).hash_claimed_until is None
    response = api.finalize(session)
    assert (response.status_code, error_code(response)) == (410, "part_corrupt")


def test_a_catch_up_stuck_on_its_first_part_lets_go_of_the_claim_at_once(api, moto_s3):
    """The part the hash needs next cannot be read (gone for a while): nothing moves, and
    the claim goes at once, so the next request catches up instead of waiting it out."""
    data = os.urandom(4 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=[2, 3])
    s3, bucket = moto_s3.client(), storage.temp_storage().bucket_name
    key = f"temp/{UploadPart.objects.get(part_number=2).temp_key}"
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.delete_object(Bucket=bucket, Key=key)

    api.upload(session, data, CHUNK, order=[1])
    assert saved(session) == (1, sha256(data[:CHUNK]))
    assert UploadSession.objects.get(pk=session).hash_claimed_until is None

    s3.put_object(Bucket=bucket, Key=key, Body=body)  # back
    api.upload(session, data, CHUNK, order=[4])
    assert saved(session) == (4, sha256(data))
    with GetCounter() as gets:
        assert api.finalize(session).json()["file"]["sha256"] == sha256(data)
    assert gets.count == 0


class LetsAnotherPartIn:
    """A part's body whose first read lets another part land first: the other request
    records its part and catches the hash up while this one is still on its way."""

    def __init__(self, body, land):
        self.body, self.land = io.BytesIO(body), land

    def read(self, size=-1):
        if self.land is not None:
            self.land, land = None, self.land
            land()
        return self.body.read(size)


def test_a_part_the_hash_reached_while_it_arrived_is_caught_up_by_its_own_request(
    client, user, settings, data_dir
):
    """Part 3 was not the next part when its request began (not hashed on its way in);
    part 1 lands meanwhile and the hash takes 1 and 2. Now part 3 is the part the hash
    needs, so its request catches it up: no other request would."""
    apply_storage(settings, "local", data_dir)
    api, chunk = Api(client, make_token(user)), 64 * 1024
    data = os.urandom(3 * chunk)
    session = api.start(data, chunk)["id"]
    api.upload(session, data, chunk, order=[2])

    part_1_lands = LetsAnotherPartIn(
        data[2 * chunk :], lambda: api.upload(session, data, chunk, [1])
    )
    chunks.receive_part(user, session, 3, part_1_lands, str(chunk))

    assert saved(session) == (3, sha256(data))


def test_a_failing_catch_up_does_not_fail_the_recorded_part(api, monkeypatch, caplog):
    monkeypatch.setattr(filehash, "_claim", database_locked)
    data = os.urandom(2 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=[2])

    assert api.put(session, 1, data[:CHUNK]).status_code == 201
    assert saved(session) == (1, sha256(data[:CHUNK]))
    assert "catching up the file's hash failed" in caplog.text
    assert api.finalize(session).json()["file"]["sha256"] == sha256(data)


@pytest.mark.django_db(transaction=True)
def test_parallel_uploads_end_with_the_whole_hash_saved(
    postgres_only, user, settings, data_dir, moto_s3, monkeypatch
):
    """Four clients, parts in shuffled order: every part is hashed once into the saved
    state, whoever catches up (one at a time, the claim; the conditional UPDATE keeps
    two from moving it twice)."""
    apply_storage(settings, "s3", data_dir, s3=moto_s3, bucket=moto_s3.new_bucket())
    settings.PORTAL_CHUNK_SIZE_MAX = 16 * MIB
    monkeypatch.setattr(filehash, "CATCH_UP_BYTES", 1 << 40)
    data = os.urandom(11 * CHUNK + 99)
    token = make_token(user)
    session = Api(Client(), token).start(data, CHUNK)["id"]
    numbers = list(range(1, 13))
    random.Random(5).shuffle(numbers)
    barrier = threading.Barrier(4)
    statuses, errors = [], []

    def put(mine):
        try:
            api = Api(Client(), token)
            barrier.wait()
            for number in mine:
                body = data[(number - 1) * CHUNK : number * CHUNK]
                statuses.append(api.put(session, number, body).status_code)
        except Exception as exc:  # reported below: a thread's exception is otherwise lost
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=put, args=(numbers[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == [] and statuses == [201] * 12
    assert saved(session) == (12, sha256(data))
    with GetCounter() as gets:
        response = Api(Client(), token).finalize(session)
    assert response.json()["file"]["sha256"] == sha256(data)
    assert gets.count == 0


def test_a_part_that_takes_the_hash_on_does_not_look_when_the_next_is_missing(api):
    data = os.urandom(3 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=[3])

    with CaptureQueriesContext(connection) as queries:
        api.upload(session, data, CHUNK, order=[1])  # hashed on its way in; part 2 not in
    assert [q for q in queries.captured_queries if "hash_claimed_until" in q["sql"]] == []
    assert saved(session) == (1, sha256(data[:CHUNK]))

    api.upload(session, data, CHUNK, order=[2])
    assert saved(session) == (3, sha256(data))


def test_a_catch_up_that_fails_lets_go_of_its_claim(api, monkeypatch, caplog):
    monkeypatch.setattr(filehash.part_sql, "move_hash", database_locked)
    data = os.urandom(3 * CHUNK)
    session = api.start(data, CHUNK)["id"]
    api.upload(session, data, CHUNK, order=[2, 3])

    assert api.put(session, 1, data[:CHUNK]).status_code == 201

    assert "catching up the file's hash failed" in caplog.text
    assert UploadSession.objects.get(pk=session).hash_claimed_until is None
    monkeypatch.undo()
    filehash.catch_up(session)  # nobody waits for a claim to run out
    assert saved(session) == (3, sha256(data))
