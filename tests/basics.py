"""What the test modules and the helper modules conftest.py imports share: the checkout,
its Python and a free loopback port (here, not in conftest.py, so that a module conftest.py
imports may use them without an import cycle)."""

import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
