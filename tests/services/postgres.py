"""PostgreSQL for tests: ``LEXICON_TEST_DATABASE_URL``, else the server on 127.0.0.1:5432, else a
throwaway cluster (the recipe of ``shared/tools/pg_throwaway.sh``). Each session gets a fresh
database with a random name, and more on demand; all are dropped at the end."""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from . import free_port

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _libpq(url: str) -> str:
    """SQLAlchemy URL -> libpq conninfo (psycopg does not know the ``+psycopg`` driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def answers(url: str) -> bool:
    try:
        with psycopg.connect(_libpq(url), connect_timeout=3):
            return True
    except psycopg.Error:
        return False


class Cluster:
    """A throwaway cluster in a temp dir; initdb refuses root, so root runs it as ``postgres``."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key)
        if not bins:
            raise RuntimeError(
                "No PostgreSQL server on 127.0.0.1:5432 and no binaries under "
                "/usr/lib/postgresql/*/bin: apt-get install postgresql, or set "
                "LEXICON_TEST_DATABASE_URL."
            )
        self.bin = Path(bins[-1])
        self.dir = Path(tempfile.mkdtemp(prefix="lexicon-pg-"))
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, text=True)

    def start(self) -> str:
        data = str(self.dir / "data")
        self._run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        opts = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", data, "-l", str(self.dir / "log"), "-w", "-o", opts, "start")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(p) for p in Path(path).parent.name.split(".") if p.isdigit())


class PostgresServer:
    """Creates and drops databases on one server; ``session_url`` is the session's database."""

    def __init__(self) -> None:
        self._cluster: Cluster | None = None
        self._created: list[str] = []
        given = os.environ.get("LEXICON_TEST_DATABASE_URL")
        if given:
            # Use the given database as is; extra databases go on the same server.
            self.admin_url = given
            self.session_url = given
            return
        if answers(DEFAULT_ADMIN_URL):
            self.admin_url = DEFAULT_ADMIN_URL
        else:
            self._cluster = Cluster()
            self.admin_url = self._cluster.start()
        self.session_url = self.create_database()

    def _admin(self, sql: str) -> None:
        with psycopg.connect(_libpq(self.admin_url), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def create_database(self) -> str:
        """A new empty database (random name) on this server; its SQLAlchemy URL."""
        name = f"lexicon_test_{secrets.token_hex(6)}"
        self._admin(f'CREATE DATABASE "{name}"')
        self._created.append(name)
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def stop(self) -> None:
        """Drop every database this session created, then stop a throwaway cluster."""
        if self._cluster is not None:
            self._cluster.stop()
            return
        for name in reversed(self._created):
            with contextlib.suppress(psycopg.Error):
                self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._created.clear()
