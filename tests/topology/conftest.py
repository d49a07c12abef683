"""Fixtures of the topology tests: a TLS certificate, an API token, the Prod environment."""

import pytest

from portal.services.tokens import create_token
from tests.topology.programs import TlsCert, prod_env


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory):
    return TlsCert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def api_token(user):
    return create_token(user, name="topology")[1]


@pytest.fixture
def prod(subprocess_env):
    """Environment of a gunicorn serving Prod behind nginx, on this test's database."""
    return prod_env(subprocess_env)
