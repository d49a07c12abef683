"""Pins for the jobs area, third round (issue #31): the edges of the URL rule the settings
and ``portal_upload --url`` share (``portal.httpclient.http_url_problem``), and how a failed
TLS handshake reads."""

import re
import ssl

import pytest

from portal.httpclient import KeepAliveConnection, TLSFailed, http_url_problem
from tests.peers import BadRequestServer, LoopbackServer, read_head, self_signed_certificate

NOT_ASCII = "must be ASCII without spaces (percent-encode other characters)"


@pytest.mark.parametrize(
    "url, problem",
    [
        ("http://portal/~ops/!hook", ""),  # "!" (33) and "~" (126): the printable ends
        ("http://portal/\x7f", NOT_ASCII),  # DEL (127), just past them
        ("http://portal/\x1f", NOT_ASCII),  # a control character, just before
        ("http://portal:65535/", ""),
        ("https://portal:1/", ""),
    ],
)
def test_the_url_rule_accepts_exactly_printable_ascii_and_ports_1_to_65535(url, problem):
    """An operator's ``~user`` path or a ``!`` in a query is a valid URL; a byte outside
    printable ASCII is not (a request line cannot carry it)."""
    assert http_url_problem(url) == problem


def test_a_failed_handshake_names_the_tls_reason_in_words():
    """The reason OpenSSL gives (``WRONG_VERSION_NUMBER`` and the like) reads as words in
    the message, not as the raw ``[SSL: ...] ... (_ssl.c:NNN)`` text."""
    with BadRequestServer() as plain:
        connection = KeepAliveConnection("https", "127.0.0.1", plain.port, timeout=2)
        with pytest.raises(TLSFailed) as failed:
            connection.exchange("GET", "/", headers={})
        connection.close()
    message = str(failed.value)
    reason = re.fullmatch(
        rf"TLS handshake with 127\.0\.0\.1:{plain.port} failed \((.+)\): "
        "does the server speak https on that port\\?",
        message,
    )
    assert reason is not None, message
    assert re.fullmatch(r"[a-z0-9 ]+", reason.group(1)), message


class AlpnServer(LoopbackServer):
    """TLS on loopback that records the protocol each handshake agreed (ALPN), then
    answers 200 and closes."""

    def __init__(self, certificate):
        super().__init__()
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(*certificate)
        self.context.set_alpn_protocols(["h2", "http/1.1"])
        self.agreed = []

    def answer(self, conn):
        with self.context.wrap_socket(conn, server_side=True) as tls:
            self.agreed.append(tls.selected_alpn_protocol())
            read_head(tls)
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")


def test_https_offers_http_1_1_by_alpn(tmp_path, monkeypatch):
    """A TLS front that speaks HTTP/2 too is told, in the handshake, that this client
    speaks HTTP/1.1 only."""
    certificate = self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", certificate[0])
    with AlpnServer(certificate) as server:
        connection = KeepAliveConnection("https", "127.0.0.1", server.port, timeout=2)
        answer = connection.exchange("GET", "/", headers={})
        connection.close()
    assert (answer.status, answer.body) == (200, b"ok")
    assert server.agreed == ["http/1.1"]
