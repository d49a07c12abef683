"""Misbehaving HTTP peers on loopback: a self-signed certificate, a server that answers 400.

``self_signed_certificate(directory)`` writes ``cert.pem`` and ``key.pem`` for
``127.0.0.1``/``localhost`` with the ``cryptography`` package, or the ``openssl`` command
when that is missing; without either the test skips, or fails when ``CI=true``.

``BadRequestServer`` answers ``400`` to the first bytes of every connection and closes, as
nginx or a proxy does on a plain-HTTP port that receives a TLS handshake.
"""

import contextlib
import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import threading

import pytest

CERT_DAYS = 2


def self_signed_certificate(directory):
    """``(cert_path, key_path)`` of a fresh self-signed certificate for 127.0.0.1."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        _write_with_cryptography(cert, key)
    except ImportError:
        _write_with_openssl(cert, key)
    return str(cert), str(key)


def _write_with_cryptography(cert_path, key_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    alt_names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _write_with_openssl(cert_path, key_path):
    openssl = shutil.which("openssl")
    if openssl is None:
        message = "neither the cryptography package nor the openssl command is installed"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            str(CERT_DAYS),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key_path),
            "-out",
            str(cert_path),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )


def read_head(conn):
    """A request's head, read from ``conn`` up to its blank line (with whatever came after
    it in the same reads); b"" when the peer hangs up first."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(4096)
        if not chunk:
            return b""
        head += chunk
    return head


class LoopbackServer:
    """A server on loopback that hands each connection to ``answer(conn)`` in one thread,
    one connection at a time, until the ``with`` block ends; ``connections`` counts them."""

    CONNECTION_TIMEOUT = 2

    def __init__(self):
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.connections = 0

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(self.CONNECTION_TIMEOUT)
                with contextlib.suppress(OSError):  # the client hung up or gave up waiting
                    self.answer(conn)

    def answer(self, conn):
        raise NotImplementedError


class BadRequestServer(LoopbackServer):
    """Answers ``HTTP/1.1 400`` to whatever a connection sends first, then closes it."""

    ANSWER = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

    def answer(self, conn):
        conn.recv(4096)
        conn.sendall(self.ANSWER)
