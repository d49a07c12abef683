"""PORTAL_BEHIND_PROXY: X-Forwarded-Proto and X-Forwarded-For count only behind a proxy.

Against gunicorn itself (Prod, gunicorn.conf.py), over plain HTTP from 127.0.0.1, which
is also where nginx connects from: without the setting, a forged ``X-Forwarded-Proto:
https`` must not pass for HTTPS (neither gunicorn's scheme headers nor Django's
SECURE_PROXY_SSL_HEADER), and a forged ``X-Forwarded-For`` must not reach the log.
"""

import pytest

from tests.topology.programs import SERVER_NAME, Gunicorn, http_get, prod_env

pytestmark = [pytest.mark.topology, pytest.mark.slow]

FORGED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}


@pytest.mark.parametrize("behind_proxy", ["", "true"], ids=["direct", "behind-proxy"])
def test_forwarded_headers_are_trusted_only_behind_a_proxy(subprocess_env, behind_proxy, tmp_path):
    env = prod_env(subprocess_env, WEB_CONCURRENCY="1")
    if behind_proxy:
        env["PORTAL_BEHIND_PROXY"] = behind_proxy
    else:
        del env["PORTAL_BEHIND_PROXY"]  # the default
    server = Gunicorn(env, tmp_path / "gunicorn.log")
    try:
        path = "/api/v1/uploads/sessions/abc"
        status, headers, body = http_get(server.port, path, host=SERVER_NAME, headers=FORGED)
        admin = http_get(server.port, "/admin/", host=SERVER_NAME, headers=FORGED)
    finally:
        server.stop()

    if behind_proxy:
        assert status == 401 and b"missing_token" in body  # treated as HTTPS: served
        assert admin[0] == 302 and admin[1]["Location"].startswith("/admin/login/")
    else:
        assert (status, headers["Location"]) == (301, f"https://{SERVER_NAME}{path}")
        assert (admin[0], admin[1]["Location"]) == (301, f"https://{SERVER_NAME}/admin/")
    access = [r for r in server.records() if r["logger"] == "gunicorn.access"]
    line = next(r for r in access if r["path"] == path)
    assert line["remote_addr"] == "127.0.0.1"
    assert line.get("client_addr") == ("203.0.113.9" if behind_proxy else None)
