"""Storage and database faults during a request: a JSON 503 for the client, the cause in
the log, and an upload that carries on once the dependency is back."""

import json
import shutil

import pytest

from portal.models import UploadPart, UploadSession
from tests.api_helpers import Api, error_code, make_token, sha256
from tests.conftest import apply_storage

PATHS_AND_HOSTS = ("/tmp", "127.0.0.1", "Errno", "Traceback", "data/")


@pytest.fixture
def api(client, user):
    return Api(client, make_token(user))


@pytest.fixture
def local(settings, data_dir):
    apply_storage(settings, "local", data_dir)
    return data_dir


def assert_unavailable(response, caplog):
    assert response.status_code == 503, response.content
    assert error_code(response) == "storage_unavailable"
    assert response["Retry-After"] == "5"
    assert response["Content-Type"] == "application/json"
    for word in PATHS_AND_HOSTS:
        assert word not in response.content.decode()
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "storage.unavailable"]
    assert record.error_type and record.error


def replace_by_file(path):
    shutil.move(path, f"{path}.away")
    path.write_text("not a directory")


def put_back(path):
    path.unlink()
    shutil.move(f"{path}.away", path)


def test_a_part_while_the_temp_root_is_a_file_is_503_and_lands_once_it_is_back(
    api, local, caplog, db
):
    session = api.start(b"x" * 20, 10)
    replace_by_file(local / "temp")

    response = api.put(session["id"], 1, b"x" * 10)

    assert_unavailable(response, caplog)
    assert not UploadPart.objects.exists()
    put_back(local / "temp")
    assert api.put(session["id"], 1, b"x" * 10).status_code == 201
    assert UploadPart.objects.count() == 1


def test_a_part_while_the_temp_root_is_missing_is_503_and_the_root_stays_missing(
    api, local, caplog, db
):
    session = api.start(b"x" * 20, 10)
    (local / "temp").rmdir()

    assert_unavailable(api.put(session["id"], 1, b"x" * 10), caplog)

    assert not (local / "temp").exists()
    assert UploadSession.objects.get().status == UploadSession.Status.INIT


def test_finalize_while_the_final_root_is_a_file_is_503_and_the_session_stays_open(
    api, local, caplog, db
):
    data = b"y" * 25
    session = api.start(data, 10)
    api.upload(session["id"], data, 10)
    replace_by_file(local / "final")

    assert_unavailable(api.finalize(session["id"]), caplog)

    assert UploadSession.objects.get().status == UploadSession.Status.IN_PROGRESS
    put_back(local / "final")
    response = api.finalize(session["id"])
    assert response.status_code == 200
    assert response.json()["file"]["sha256"] == sha256(data)


def test_finalize_when_a_part_is_a_directory_is_503_not_a_corrupt_session(api, local, caplog, db):
    data = b"z" * 25
    session = api.start(data, 10)
    api.upload(session["id"], data, 10)
    part = local / "temp" / UploadPart.objects.get(part_number=2).temp_key
    saved = part.read_bytes()
    part.unlink()
    part.mkdir()

    assert_unavailable(api.finalize(session["id"]), caplog)

    assert UploadSession.objects.get().status == UploadSession.Status.IN_PROGRESS
    part.rmdir()
    part.write_bytes(saved)
    assert api.finalize(session["id"]).status_code == 200


@pytest.mark.s3
def test_an_s3_outage_is_503_for_parts_and_finalize_and_the_upload_resumes(
    api, settings, data_dir, moto_s3_factory, caplog, db
):
    s3 = moto_s3_factory()
    apply_storage(settings, "s3", data_dir, s3=s3, bucket=s3.new_bucket())
    data = b"s" * 25
    session = api.start(data, 10)
    api.put(session["id"], 1, data[:10])
    s3.stop()

    assert_unavailable(api.put(session["id"], 2, data[10:20]), caplog)
    caplog.clear()
    s3.start()
    api.put(session["id"], 2, data[10:20])
    api.put(session["id"], 3, data[20:])
    s3.stop()
    assert_unavailable(api.finalize(session["id"]), caplog)
    s3.start()
    response = api.finalize(session["id"])
    assert response.status_code == 200
    assert response.json()["file"]["sha256"] == sha256(data)


def test_json_nested_deeper_than_the_parser_allows_is_400(api, db):
    body = "[" * 30_000 + "]" * 30_000
    response = api.client.post(
        "/api/v1/uploads/sessions",
        data=body,
        content_type="application/json",
        headers=api.headers,
    )
    assert response.status_code == 400
    assert error_code(response) == "invalid_json"


@pytest.mark.parametrize(
    ("authorization", "challenge"),
    [
        (None, 'Bearer realm="portal"'),
        ("Basic dXNlcjpwYXNz", 'Bearer realm="portal"'),
        ("Bearer pt_not-a-token", 'Bearer realm="portal", error="invalid_token"'),
    ],
)
def test_401_answers_carry_the_bearer_challenge(client, db, authorization, challenge):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.post(
        "/api/v1/uploads/sessions",
        data=json.dumps({}),
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == challenge
