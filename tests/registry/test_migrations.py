"""Migrations bring an empty database to head on SQLite and PostgreSQL, and the models agree
with what the migrations built (no drift); 0007 keeps every row and makes ids never reused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection

from registry.migrations import alembic_config, drift, upgrade

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


def test_sqlite_ids_are_never_reused_after_0007_keeping_every_row(sqlite_url: str) -> None:
    _check_ids_never_reused(sqlite_url)


@pytest.mark.postgres
def test_postgres_ids_are_never_reused_across_0007(
    new_postgres_database: Callable[[], str],
) -> None:
    _check_ids_never_reused(new_postgres_database())


# What 0007 rebuilds on SQLite (embedding, embedding_version) and the rows that point at them.
CHILDREN = ("embedding_tag", "version_tag", "version_summary", "version_hash")


def _check_ids_never_reused(url: str) -> None:
    """Rows written before 0007 survive it (and its downgrade) with their ids and children; after
    it, deleting the highest embedding and version does not give their ids to new rows."""
    upgrade(url, "0006")
    engine = create_engine(url)
    with engine.begin() as conn:
        _seed(conn)
        before = _snapshot(conn)
    upgrade(url)
    with engine.begin() as conn:
        assert _snapshot(conn) == before
        conn.execute(text("DELETE FROM embedding_version WHERE id IN (2, 3)"))
        conn.execute(text("DELETE FROM embedding WHERE id = 2"))
        embedding_id = _insert_embedding(conn, "c")
        version_id = _insert_version(conn, embedding_id, "sha256:" + "c" * 64)
    assert embedding_id > 2 and version_id > 3  # not the deleted highest ids again
    with engine.begin() as conn:
        after = _snapshot(conn)
    command.downgrade(alembic_config(url), "0006")
    with engine.begin() as conn:
        assert _snapshot(conn) == after
    upgrade(url)
    assert drift(url) == []
    engine.dispose()


def _seed(conn: Connection) -> None:
    """Embeddings 1 (a) and 2 (b); versions 1 (a@1), 2 and 3 (b@1, b@2); a row of each child."""
    conn.execute(
        text("INSERT INTO namespace (name, kind, created_at) VALUES ('alice', 'user', :t)"),
        {"t": datetime.now(UTC)},
    )
    assert [_insert_embedding(conn, name) for name in ("a", "b")] == [1, 2]
    versions = [(1, "1"), (2, "2"), (2, "3")]
    ids = [_insert_version(conn, e, "sha256:" + digit * 64) for e, digit in versions]
    assert ids == [1, 2, 3]
    conn.execute(text("INSERT INTO embedding_tag (embedding_id, tag) VALUES (1, 'anime')"))
    conn.execute(
        text(
            "INSERT INTO version_tag (embedding_id, tag, number, updated_at) "
            "VALUES (2, 'stable', 1, :t)"
        ),
        {"t": datetime.now(UTC)},
    )
    conn.execute(
        text("INSERT INTO version_summary (version_id, encoder, vector) VALUES (1, 'clip_l', :v)"),
        {"v": b"\x00" * 8},
    )
    conn.execute(
        text("INSERT INTO version_hash (version_id, kind, sha256) VALUES (3, 'digest', :h)"),
        {"h": "3" * 64},
    )


def _insert_embedding(conn: Connection, name: str) -> int:
    now = datetime.now(UTC)
    columns = (
        "namespace, name, description, visibility, version_counter, downloads, stars, "
        "trending, created_at, updated_at"
    )
    values = "'alice', :name, '', 'public', 0, 0, 0, 0.0, :t, :t"
    row = conn.execute(
        text(f"INSERT INTO embedding ({columns}) VALUES ({values}) RETURNING id"),
        {"name": name, "t": now},
    )
    return int(row.scalar_one())


def _insert_version(conn: Connection, embedding_id: int, digest: str) -> int:
    columns = (
        "embedding_id, number, digest, size, family, vectors, encoders, dtype, source_format, "
        "upload_sha256, notes, yanked, created_at"
    )
    values = (
        ":e, (SELECT COUNT(*) + 1 FROM embedding_version WHERE embedding_id = :e), :d, 1, "
        "'sd1', 1, '{}', 'f32', 'test', :u, '', false, :t"
    )
    row = conn.execute(
        text(f"INSERT INTO embedding_version ({columns}) VALUES ({values}) RETURNING id"),
        {"e": embedding_id, "d": digest, "u": digest[-64:], "t": datetime.now(UTC)},
    )
    return int(row.scalar_one())


def _snapshot(conn: Connection) -> dict[str, list[tuple]]:
    tables = {
        "embedding": "id, name",
        "embedding_version": "id, embedding_id, number, digest",
        "embedding_tag": "embedding_id, tag",
        "version_tag": "embedding_id, tag, number",
        "version_summary": "version_id, encoder, vector",
        "version_hash": "version_id, kind, sha256",
    }
    return {
        table: [tuple(r) for r in conn.execute(text(f"SELECT {cols} FROM {table} ORDER BY 1, 2"))]
        for table, cols in tables.items()
    }
