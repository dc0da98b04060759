"""Run alembic migrations programmatically (``lexicon-registry migrate``, ``serve``, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlmodel import SQLModel

import registry.models  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
# Search indexes (SQLite FTS5 tables, PostgreSQL tsvector indexes) are created by hand in the
# migrations; autogenerate must not see them as drift.
FTS_PREFIX = "embedding_fts"


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    return not (name or "").startswith(FTS_PREFIX)


def alembic_config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "alembic"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def drift(url: str) -> list:
    """Differences between the models and a migrated database (empty when in sync)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"include_object": include_object, "compare_type": True}
        )
        return compare_metadata(ctx, SQLModel.metadata)
