"""The image, built once per test session, and a PostgreSQL database of its own."""

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.image import podman


@pytest.fixture(scope="session")
def postgres_server_url():
    """``DATABASE_URL`` without its database name; the image tests need PostgreSQL."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://...")
    return url


@pytest.fixture(scope="session")
def image_database(postgres_server_url):
    """A fresh database for the image's migrations, dropped at the end."""
    import psycopg

    name = f"portal_image_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(urlsplit(postgres_server_url)._replace(path=f"/{name}"))
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def portal_image(postgres_server_url):
    """The repo's Dockerfile built on the local base (once per session), mounted read-only."""
    podman.require_programs()
    image = podman.build_image()
    with podman.mounted(image) as root:
        image.root = root
        yield image
