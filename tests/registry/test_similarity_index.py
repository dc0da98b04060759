"""The in-memory similarity index learns of every committed version, also one that commits
after a version with a higher id (PostgreSQL hands out ids before commit), and a publish's
near-duplicate check asks the database no more than it must (issue 12)."""

from __future__ import annotations

import numpy as np
from alembic import command
from sqlalchemy import text
from sqlmodel import Session

from registry.migrations import alembic_config
from registry.similarity.index import SimilarityIndex
from tests.registry.helpers import Hub, auth, embedding_bytes
from tests.registry.test_similar import _sd1
from tests.registry.test_write_path import statements


def _version_ids(hub: Hub) -> list[int]:
    with Session(hub.engine) as session:
        return list(session.execute(text("SELECT id FROM embedding_version ORDER BY id")).scalars())


def _summaries(hub: Hub, version_id: int) -> list[dict]:
    with Session(hub.engine) as session:
        rows = session.execute(
            text("SELECT encoder, vector FROM version_summary WHERE version_id = :v"),
            {"v": version_id},
        ).all()
    return [{"v": version_id, "e": encoder, "b": vector} for encoder, vector in rows]


def _sql(hub: Hub, statement: str, params: dict | list[dict]) -> None:
    with Session(hub.engine) as session:
        session.execute(text(statement), params)
        session.commit()


def test_a_version_committed_late_below_the_highest_id_is_still_loaded(hub: Hub) -> None:
    token = hub.user("alice")
    for i in range(3):
        hub.published("alice", f"e{i}", token)
    ids = _version_ids(hub)
    late = ids[1]
    rows = _summaries(hub, late)
    # As if its publish had not committed yet when the index first looked...
    _sql(hub, "DELETE FROM version_summary WHERE version_id = :v", {"v": late})
    index = SimilarityIndex()
    with Session(hub.engine) as session:
        index.refresh(session)
    assert index.seen == {ids[0], ids[2]}
    # ... and committed after a version with a higher id.
    _sql(hub, "INSERT INTO version_summary VALUES (:v, :e, :b)", rows)
    with Session(hub.engine) as session:
        index.refresh(session)
    assert index.seen == set(ids)
    assert index.families["sd1"].count == 3


def test_only_a_publish_with_a_near_duplicate_asks_the_database_who_may_see_it(hub: Hub) -> None:
    token = hub.user("alice")
    data = embedding_bytes()
    hub.published("alice", "dog", token, data)
    visibility_check = "FROM embedding JOIN embedding_version"
    with statements(hub) as seen:
        assert hub.published("alice", "cat", token)["near_duplicates"] == []
    assert not [s for s in seen if visibility_check in s]
    with statements(hub) as seen:
        copy = hub.published("alice", "dog-copy", token, data)["near_duplicates"]
    assert [d["ref"] for d in copy] == ["alice/dog@1"]
    assert [s for s in seen if visibility_check in s]


def test_a_reused_version_id_never_answers_with_the_deleted_versions_vectors(make_hub) -> None:  # type: ignore[no-untyped-def]
    # SQLite without AUTOINCREMENT (a database not yet at migration 0007; nothing stops the app
    # from running on one) hands out the id of a deleted highest row again; the index must not
    # score the new version with the old one's vectors (nor take them as a near-duplicate query).
    hub = make_hub("sqlite-local")
    command.downgrade(alembic_config(hub.settings.resolved_database_url), "0006")
    token = hub.user("alice")
    base = np.random.default_rng(1).standard_normal(768)
    hub.published("alice", "a", token, _sd1(base))
    hub.published(
        "alice", "b", token, _sd1(base + 0.05 * np.random.default_rng(2).standard_normal(768))
    )
    assert _similar(hub, "a") == ["b"]  # the index has loaded b
    ids_before = _version_ids(hub)
    assert hub.client.delete("/api/v1/embeddings/alice/b", headers=auth(token)).status_code == 204
    opposite = hub.published("alice", "c", token, _sd1(-base))
    assert _version_ids(hub) == ids_before  # c has b's old id
    assert opposite["near_duplicates"] == []  # not "a", as b's vectors would say
    assert "c" not in _similar(hub, "a")  # c is the opposite of a, not b's near copy


def _similar(hub: Hub, name: str) -> list[str]:
    return [i["name"] for i in hub.get(f"/api/v1/embeddings/alice/{name}/similar").json()["items"]]
