"""Registry fixtures: one ``hub`` per test on each backend (SQLite + local blob directory, and
PostgreSQL + moto's S3 server), migrated with alembic (never ``create_all``), plus factories for
users, orgs, tokens and random embeddings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from registry.app import create_app
from registry.migrations import upgrade
from registry.settings import Settings
from tests.registry.helpers import BACKENDS, Hub


def build_settings(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, **overrides: Any
) -> Settings:
    data_dir = tmp_path / "data"
    if backend == "sqlite-local":
        url = f"sqlite:///{tmp_path / 'registry.db'}"
        settings = Settings(data_dir=data_dir, database_url=url, storage="local", **overrides)
    else:
        url = request.getfixturevalue("new_postgres_database")()
        s3 = request.getfixturevalue("moto_endpoint")
        settings = Settings(
            data_dir=data_dir,
            database_url=url,
            storage="s3",
            s3_endpoint_url=s3.url,
            s3_bucket=s3.new_bucket(),
            s3_access_key_id=s3.access_key,
            s3_secret_access_key=s3.secret,
            s3_region=s3.region,
            **overrides,
        )
    upgrade(settings.resolved_database_url)
    return settings


@pytest.fixture
def make_hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """Factory: ``make_hub(backend, **settings_overrides)`` -> a started :class:`Hub`."""
    stack: list[TestClient] = []

    def _make(backend: str, **overrides: Any) -> Hub:
        settings = build_settings(backend, tmp_path_factory.mktemp("hub"), request, **overrides)
        app = create_app(settings)
        client = TestClient(app)
        client.__enter__()
        stack.append(client)
        return Hub(backend, settings, app, client)

    yield _make
    for client in reversed(stack):
        client.__exit__(None, None, None)


@pytest.fixture(
    params=[
        pytest.param(b, marks=[pytest.mark.postgres, pytest.mark.s3] if "postgres" in b else [])
        for b in BACKENDS
    ]
)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def hub(make_hub, backend: str) -> Hub:  # type: ignore[no-untyped-def]
    return make_hub(backend)
