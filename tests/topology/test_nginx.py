"""deploy/nginx/portal.conf in front of gunicorn (Prod, PORTAL_BEHIND_PROXY=true).

What a client sees through it: HTTPS, the redirect from plain HTTP, probes passing
through without access-log lines, nginx's request id on both sides' logs, the client's
address (not a forged one) in gunicorn's access line, /metrics denied, the admin's static
files, the body limits (64 KiB of JSON, PORTAL_CHUNK_SIZE_MAX of part, PORTAL_MAX_FILE_SIZE
of tus PATCH, streamed: tests/topology/test_tus_nginx.py) and the per-address limits
answering 429.
"""

import http.client
import re
import socket
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from boot.settings import Base
from portal.services.sessions import create_session
from tests.conftest import PYTHON, ROOT
from tests.topology.clients import BASE, Client, Uploader
from tests.topology.programs import NGINX_CONF, SERVER_NAME, Gunicorn, Nginx, http_get

pytestmark = [pytest.mark.topology, pytest.mark.slow]

MIB = 1024 * 1024
NGINX_ID = re.compile(r"[0-9a-f]{32}")


def size_in_bytes(text):
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", text).groups()
    return int(number) * {"": 1, "k": 1024, "m": MIB, "g": 1024 * MIB}[unit.lower()]


def location_block(config, opening):
    start = config.index(opening)
    return config[start : config.index("}", start)]


def test_part_body_limit_is_the_largest_allowed_part():
    config = NGINX_CONF.read_text()
    parts = location_block(config, "location ~ ^/api/v1/uploads/sessions/[^/]+/parts/")
    limit = re.search(r"client_max_body_size (\w+);", parts)[1]
    assert size_in_bytes(limit) == Base.__dict__["PORTAL_CHUNK_SIZE_MAX"].default
    api = location_block(config, "location /api/ {")
    from portal.views.uploads import MAX_JSON_BYTES

    assert size_in_bytes(re.search(r"client_max_body_size (\w+);", api)[1]) == MAX_JSON_BYTES


def test_tus_location_streams_a_whole_file_onto_the_tus_lane():
    from portal.health.lanes import TUS_PREFIX, TUS_THREADS

    tus = location_block(NGINX_CONF.read_text(), f"location {TUS_PREFIX} {{")
    limit = re.search(r"client_max_body_size (\w+);", tus)[1]
    assert size_in_bytes(limit) == Base.__dict__["PORTAL_MAX_FILE_SIZE"].default
    assert "proxy_request_buffering off;" in tus
    assert int(re.search(r"limit_conn portal_tus (\d+);", tus)[1]) == TUS_THREADS


@pytest.fixture
def front(prod, data_dir, tls_cert, tmp_path):
    """nginx with the shipped file in front of gunicorn; the admin's static files collected."""
    prod = {**prod, "PORTAL_STATIC_ROOT": str(data_dir / "static")}
    subprocess.run(
        [PYTHON, "manage.py", "collectstatic", "--no-input", "-v", "0"],
        cwd=ROOT, env=prod, check=True, timeout=120,
    )  # fmt: skip
    server = Gunicorn(prod, tmp_path / "gunicorn.log")
    try:
        nginx = Nginx(
            tmp_path / "nginx", upstream_port=server.port, cert=tls_cert,
            static_root=data_dir / "static",
        )  # fmt: skip
        try:
            yield server, nginx
        finally:
            nginx.stop()
    finally:
        server.stop()


def https(nginx, tls_cert, source, token=None):
    return Client(nginx.https_port, context=tls_cert.client_context(), source=source, token=token)


def test_requests_through_nginx(front, tls_cert, api_token):
    server, nginx = front
    client = https(nginx, tls_cert, "127.0.3.1", api_token)
    forged = {"X-Forwarded-For": "203.0.113.9", "X-Request-ID": "client-chosen-id"}
    status, headers, body = client.request("GET", f"{BASE}/nope", headers=forged)
    # HTTPS reached the API (no redirect): the portal trusted nginx's X-Forwarded-Proto.
    assert status == 404 and b"session_not_found" in body
    request_id = headers["x-request-id"]
    assert NGINX_ID.fullmatch(request_id), request_id

    # Plain HTTP: nginx redirects everything but the probes, which pass through.
    status, headers, _ = http_get(nginx.http_port, f"{BASE}/nope", host=SERVER_NAME)
    assert (status, headers["Location"]) == (301, f"https://{SERVER_NAME}{BASE}/nope")
    for path in ("/health", "/ready"):
        assert http_get(nginx.http_port, path, host=SERVER_NAME)[0] == 200
        assert client.request("GET", path)[0] == 200
    assert client.request("GET", "/metrics")[0] == 403
    status, headers, _ = client.request("GET", "/static/admin/css/base.css")
    assert status == 200 and headers["content-type"] == "text/css"
    status, headers, body = client.request("GET", "/admin/login/")
    assert status == 200 and "secure" in headers["set-cookie"].lower()

    # An upload through nginx: parts in parallel on two more connections.
    uploader = Uploader(
        lambda source: https(nginx, tls_cert, source, api_token),
        ["127.0.3.2", "127.0.3.3", "127.0.3.4"],
    )
    uploader.run(threading.Event(), max_files=2)
    assert uploader.failures() == [] and len(uploader.files) == 2

    client.close()
    records = [r for r in server.records() if r["logger"] == "gunicorn.access"]
    line = next(r for r in records if r.get("request_id") == request_id)
    # gunicorn's peer is nginx; the client is the address nginx saw, not the forged one.
    assert (line["remote_addr"], line["client_addr"]) == ("127.0.0.1", "127.0.3.1")
    assert not [r for r in records if r["path"] in ("/health", "/ready")]
    access = nginx.access_records()
    assert next(a for a in access if a["request_id"] == request_id)["status"] == 404
    quiet = ("/health", "/ready", "/static/admin/css/base.css")
    assert not [a for a in access if a["path"] in quiet]
    assert {a["remote_addr"] for a in access} >= {"127.0.3.1", "127.0.3.2"}


def put_headers_only(nginx, tls_cert, path, length, source="127.0.4.1"):
    """Send a PUT's headers with ``Content-Length: length`` and no body; nginx's answer."""
    conn = http.client.HTTPSConnection(
        "127.0.0.1", nginx.https_port, context=tls_cert.client_context(), timeout=10,
        source_address=(source, 0),
    )  # fmt: skip
    try:
        conn.putrequest("PUT", path, skip_host=True)
        conn.putheader("Host", SERVER_NAME)
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.getheader("X-Request-ID"), response.read()
    finally:
        conn.close()


def test_body_limits(front, tls_cert, api_token):
    _, nginx = front
    largest = Base.__dict__["PORTAL_CHUNK_SIZE_MAX"].default
    part = f"{BASE}/00000000-0000-0000-0000-000000000000/parts/1"
    started = time.monotonic()
    status, request_id, _ = put_headers_only(nginx, tls_cert, part, largest + 1)
    # Refused on the header alone, before a byte of the body was read.
    assert status == 413 and NGINX_ID.fullmatch(request_id)
    assert time.monotonic() - started < 2
    # The largest allowed part passes nginx (it reaches the portal, which has no such
    # session); a JSON body over 64 KiB does not.
    client = https(nginx, tls_cert, "127.0.4.2", api_token)
    status, _, body = client.request("PUT", part, b"\0" * largest)
    assert status == 404 and b"session_not_found" in body
    status, _, body = client.request("POST", BASE, b"{" + b" " * (64 * 1024), {})
    assert status == 413 and b"nginx" in body
    status, _, body = client.request("POST", BASE, b"{" + b" " * (64 * 1024 - 1), {})
    assert status == 400 and b"invalid_json" in body


def test_per_address_limits(front, tls_cert, user, api_token):
    _, nginx = front
    # The admin login: one request and a burst of 10, then 10 a minute.
    guesser = https(nginx, tls_cert, "127.0.5.1")
    statuses = [guesser.request("GET", "/admin/login/")[0] for _ in range(20)]
    assert statuses[:11] == [200] * 11 and statuses[11:].count(429) >= 8, statuses
    assert https(nginx, tls_cert, "127.0.5.2").request("GET", "/admin/login/")[0] == 200

    # The API: 50 requests a second with a burst of 100, from one address.
    def hammer(_):
        client = https(nginx, tls_cert, "127.0.5.3")
        statuses = Counter(client.request("GET", f"{BASE}/nope")[0] for _ in range(40))
        client.close()
        return statuses

    with ThreadPoolExecutor(8) as pool:
        total = sum(pool.map(hammer, range(8)), Counter())
    assert total[401] >= 100 and total[429] >= 20, total
    assert https(nginx, tls_cert, "127.0.5.4").request("GET", f"{BASE}/nope")[0] == 401

    # The API: 32 connections at once from one address; the 33rd is refused at once.
    chunk = 256 * 1024
    spec = {"filename": "slow.bin", "size_bytes": 40 * chunk, "chunk_size_bytes": chunk}
    session, _ = create_session(user, spec)
    slow = [
        open_slow_part(nginx, tls_cert, api_token, session.pk, number, "127.0.5.5")
        for number in range(1, 33)
    ]
    try:
        time.sleep(0.5)  # let nginx account for all 32
        status, _, _ = https(nginx, tls_cert, "127.0.5.5", api_token).request(
            "GET", f"{BASE}/{session.pk}"
        )
        assert status == 429
        status, _, _ = https(nginx, tls_cert, "127.0.5.6", api_token).request(
            "GET", f"{BASE}/{session.pk}"
        )
        assert status == 200
    finally:
        for sock in slow:
            sock.close()


def open_slow_part(nginx, tls_cert, token, session_id, number, source):
    """A part upload that sends its headers and one byte of its body, then waits."""
    raw = socket.create_connection(("127.0.0.1", nginx.https_port), 5, (source, 0))
    sock = tls_cert.client_context().wrap_socket(raw, server_hostname=SERVER_NAME)
    sock.sendall(
        f"PUT {BASE}/{session_id}/parts/{number} HTTP/1.1\r\nHost: {SERVER_NAME}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {256 * 1024}\r\n\r\n\0".encode()
    )
    return sock
