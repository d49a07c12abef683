"""Part bodies through a real gunicorn: the body is read straight from gunicorn's socket.

``portal.request_body`` takes a part's bytes from the connection without gunicorn's
buffers, so these tests speak raw HTTP/1.1 to gunicorn (``gunicorn.conf.py``, one gthread
worker) and check what must not change: exact sizes, keep-alive and pipelined requests on
one connection, bodies that stop short or run long, and clients that go away.
"""

import hashlib
import json
import os
import socket
import time

import pytest

from portal.models import UploadPart, UploadSession
from tests import objects
from tests.api_helpers import Api, make_token, sha256
from tests.processes import ServerProcess

CHUNK = 3 * 1024 * 1024 + 17  # more than one read buffer, not a multiple of it


@pytest.fixture
def server(subprocess_env, tmp_path):
    gunicorn = ServerProcess.gunicorn(subprocess_env, tmp_path)
    yield gunicorn
    gunicorn.stop()


def connect(server):
    return socket.create_connection(("127.0.0.1", server.port), timeout=20)


@pytest.fixture
def token(user):
    return make_token(user)


def new_session(client, token, data):
    return Api(client, token).start(data, CHUNK)["id"]


def put_request(token, session_id, number, body, *, length=None, close=False):
    head = (
        f"PUT /api/v1/uploads/sessions/{session_id}/parts/{number} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/octet-stream\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n"
        + ("Connection: close\r\n" if close else "")
        + "\r\n"
    )
    return head.encode() + body


def status_request(token, session_id, *, close=False):
    return (
        f"GET /api/v1/uploads/sessions/{session_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\n" + ("Connection: close\r\n" if close else "") + "\r\n"
    ).encode()


def read_responses(sock, count):
    """``count`` HTTP responses from ``sock`` as (status, JSON body)."""
    data, responses = b"", []
    while len(responses) < count:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            head = data[:head_end].decode("latin-1").split("\r\n")
            lengths = [
                line.split(":", 1)[1] for line in head if line.lower().startswith("content-length:")
            ]
            length = int(lengths[0]) if lengths else 0
            if len(data) >= head_end + 4 + length:
                body = data[head_end + 4 : head_end + 4 + length]
                parsed = json.loads(body) if body.startswith(b"{") else body
                responses.append((int(head[0].split()[1]), parsed))
                data = data[head_end + 4 + length :]
                continue
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return responses


def temp_keys():
    return objects.own_temp_keys()


def stored_bytes(number):
    return objects.part_bytes(UploadPart.objects.get(part_number=number))


def test_keep_alive_parts_and_a_status_on_one_connection(client, token, server):
    data = os.urandom(2 * CHUNK + 1000)
    sid = new_session(client, token, data)
    parts = [data[:CHUNK], data[CHUNK : 2 * CHUNK], data[2 * CHUNK :]]
    with connect(server) as sock:
        for number, part in enumerate(parts, 1):
            sock.sendall(put_request(token, sid, number, part))
            [(status, body)] = read_responses(sock, 1)
            assert (status, body["sha256"], body["size_bytes"]) == (201, sha256(part), len(part))
        sock.sendall(status_request(token, sid))
        [(status, body)] = read_responses(sock, 1)
    assert (status, body["completed_parts"], body["bytes_received"]) == (200, 3, len(data))
    for number, part in enumerate(parts, 1):
        assert stored_bytes(number) == part
    response = Api(client, token).finalize(sid)
    assert response.json()["file"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_pipelined_requests_behind_a_part_are_answered_in_order(client, token, server):
    """The next requests arrive with the part's last bytes: they stay gunicorn's to parse."""
    data = b"a" * CHUNK + b"b" * 10
    sid = new_session(client, token, data)
    burst = (
        put_request(token, sid, 2, b"b" * 10)
        + put_request(token, sid, 1, b"a" * CHUNK)
        + put_request(token, sid, 2, b"b" * 10)
        + status_request(token, sid, close=True)
    )
    with connect(server) as sock:
        sock.sendall(burst)
        responses = read_responses(sock, 4)
    assert [status for status, _ in responses] == [201, 201, 200, 200]
    assert responses[3][1]["completed_parts"] == 2
    assert (stored_bytes(1), stored_bytes(2)) == (b"a" * CHUNK, b"b" * 10)


def test_a_body_that_stops_short_is_400_and_leaves_nothing(client, token, server):
    data = os.urandom(CHUNK + 5)
    sid = new_session(client, token, data)
    with connect(server) as sock:
        sock.sendall(put_request(token, sid, 1, data[: CHUNK // 2], length=CHUNK))
        sock.shutdown(socket.SHUT_WR)  # the client has nothing more to send
        [(status, body)] = read_responses(sock, 1)
    assert (status, body["error"]["code"]) == (400, "incomplete_part")
    assert temp_keys() == []
    assert not UploadPart.objects.exists()
    assert UploadSession.objects.get().completed_parts == 0


def test_a_body_longer_than_declared_stores_only_the_declared_bytes(client, token, server):
    """What follows Content-Length is the next request (here garbage), never the part."""
    data = b"x" * CHUNK + b"y" * 7
    sid = new_session(client, token, data)
    with connect(server) as sock:
        sock.sendall(put_request(token, sid, 2, b"y" * 7 + b"EXTRA BYTES\r\n\r\n", length=7))
        responses = read_responses(sock, 2)
    assert responses[0][0] == 201
    assert responses[0][1]["size_bytes"] == 7
    assert [status for status, _ in responses[1:]] in ([], [400])
    assert stored_bytes(2) == b"y" * 7


def test_a_client_that_goes_away_mid_part_leaves_nothing(client, token, server):
    data = os.urandom(CHUNK + 5)
    sid = new_session(client, token, data)
    sock = connect(server)
    sock.sendall(put_request(token, sid, 1, data[: CHUNK // 3], length=CHUNK))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()  # RST: the server's next read fails
    deadline = time.monotonic() + 10
    while f"{sid}/parts/1 400" not in server.output():
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.05)
    assert temp_keys() == []
    assert not UploadPart.objects.exists()
    with connect(server) as sock:  # the worker serves the next client as usual
        sock.sendall(put_request(token, sid, 1, data[:CHUNK], close=True))
        [(status, body)] = read_responses(sock, 1)
    assert (status, body["sha256"]) == (201, sha256(data[:CHUNK]))
