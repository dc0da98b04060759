"""A LIVE registry for the client tests: the real app served by uvicorn on a free loopback port
(in a background thread), on both backends — SQLite + local blob directory, and PostgreSQL
(fresh database, alembic-migrated) + moto's S3 server (fresh bucket, presigned redirects).

One registry per backend per session (starting one costs seconds); tests keep apart by using
their own embedding names. ``alice`` and ``bob`` are two users with read+write tokens.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from registry.accounts import services as accounts
from registry.app import create_app
from registry.db import session_scope
from registry.migrations import upgrade
from registry.settings import Settings
from tests.services import free_port

BACKENDS = ["sqlite-local", "postgres-s3"]


@dataclass
class LiveRegistry:
    backend: str
    url: str
    app: Any
    tokens: dict[str, str]

    def unique(self, stem: str = "e") -> str:
        """An embedding name no other test uses."""
        return f"{stem}-{secrets.token_hex(4)}"


class _Server:
    """uvicorn in a thread; ``stop`` asks it to exit and waits."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the registry did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _settings(backend: str, tmp: Path, request: pytest.FixtureRequest) -> Settings:
    if backend == "sqlite-local":
        return Settings(data_dir=tmp, database_url=f"sqlite:///{tmp / 'registry.db'}")
    s3 = request.getfixturevalue("moto_endpoint")
    return Settings(
        data_dir=tmp,
        database_url=request.getfixturevalue("new_postgres_database")(),
        storage="s3",
        s3_endpoint_url=s3.url,
        s3_bucket=s3.new_bucket(),
        s3_access_key_id=s3.access_key,
        s3_secret_access_key=s3.secret,
        s3_region=s3.region,
        log_level="WARNING",
    )


@pytest.fixture(
    scope="session",
    params=[
        pytest.param(b, marks=[pytest.mark.postgres, pytest.mark.s3] if "postgres" in b else [])
        for b in BACKENDS
    ],
)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveRegistry]:
    backend = str(request.param)
    settings = _settings(backend, tmp_path_factory.mktemp(f"registry-{backend}"), request)
    upgrade(settings.resolved_database_url)
    app = create_app(settings)
    tokens = {}
    with session_scope(app.state.registry.engine) as session:
        for name in ("alice", "bob"):
            user = accounts.create_user(session, name)
            tokens[name], _ = accounts.create_token(session, user, "tests")
    server = _Server(app)
    yield LiveRegistry(backend, f"http://127.0.0.1:{server.port}", app, tokens)
    server.stop()


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def cli_env(live: LiveRegistry, tmp_path: Path, cache_dir: Path) -> dict[str, str]:
    """Environment for ``hub`` as alice; saved credentials go to tmp (never the user's)."""
    return {
        "LEXICON_URL": live.url,
        "LEXICON_TOKEN": live.tokens["alice"],
        "LEXICON_CACHE": str(cache_dir),
        "LEXICON_OFFLINE": "0",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }


@pytest.fixture
def hub_cli(cli_env: dict[str, str]) -> Callable[..., Any]:
    """``hub_cli("pull", ref, env={...})`` -> click Result (stdout and stderr kept apart)."""
    from client.cli.main import app

    def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Any:
        runner = CliRunner()
        old = os.getcwd()
        if cwd is not None:
            os.chdir(cwd)
        try:
            return runner.invoke(app, [str(a) for a in args], env={**cli_env, **(env or {})})
        finally:
            os.chdir(old)

    return run
