"""A throwaway database for a benchmark run, so no bench needs ``createdb`` first."""

import uuid
from urllib.parse import urlsplit, urlunsplit


class ScratchDatabase:
    """A SQLite file in ``workdir``, or a fresh PostgreSQL database on ``server_url``'s server.

    ``server_url`` names any database the user can connect to (``.../test``); the bench
    gets its own ``bench_<prefix>_<random>`` beside it and ``drop()`` removes it again.
    """

    def __init__(self, server_url, workdir, *, prefix):
        self.server_url = server_url
        if not server_url:
            self.url = f"sqlite:///{workdir / 'bench.sqlite3'}"
            self.name = "SQLite (WAL, file in a temp dir)"
            return
        self.db_name = f"bench_{prefix}_{uuid.uuid4().hex[:10]}"
        parts = urlsplit(server_url)
        self.url = urlunsplit(parts._replace(path=f"/{self.db_name}"))
        self.name = f"PostgreSQL ({parts.hostname}:{parts.port or 5432}, {self.db_name})"
        self._admin(f'CREATE DATABASE "{self.db_name}"')

    def _admin(self, sql):
        import psycopg

        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(sql)

    def drop(self):
        if self.server_url:
            self._admin(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
