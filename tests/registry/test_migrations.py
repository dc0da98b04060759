"""Migrations bring an empty database to head on SQLite and PostgreSQL, and the models agree
with what the migrations built (no drift)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import create_engine, inspect

from registry.migrations import drift, upgrade

TABLES = {
    "namespace",
    "users",
    "orgs",
    "membership",
    "api_token",
    "embedding",
    "embedding_version",
    "embedding_tag",
    "version_tag",
    "star",
    "alembic_version",
}


def _check(url: str) -> None:
    upgrade(url)
    tables = set(inspect(create_engine(url)).get_table_names())
    assert tables >= TABLES, TABLES - tables
    assert drift(url) == []
    upgrade(url)  # a second run is a no-op
    assert drift(url) == []


def test_sqlite_upgrade_head_without_drift(sqlite_url: str) -> None:
    _check(sqlite_url)


@pytest.mark.postgres
def test_postgres_upgrade_head_without_drift(new_postgres_database: Callable[[], str]) -> None:
    _check(new_postgres_database())


def test_drift_is_detected_on_an_unmigrated_database(sqlite_url: str) -> None:
    """The drift check can fail: an empty database differs from the models."""
    create_engine(sqlite_url).connect().close()
    assert drift(sqlite_url) != []
