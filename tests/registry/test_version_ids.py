"""Ids are never handed out twice: deleting the embedding that holds the highest ids and then
publishing again gives new ids on every backend (SQLite without AUTOINCREMENT reused them), so
the running registry's similarity index, which remembers rows by version and embedding id, finds
the new version at once instead of after a restart."""

from __future__ import annotations

import numpy as np

from registry.embeddings.models import Embedding, EmbeddingVersion
from tests.registry.helpers import Hub, auth
from tests.registry.test_similar import WIDTH, _near, _sd1


def test_a_publish_after_a_delete_gets_new_ids_and_is_similar_at_once(hub: Hub) -> None:
    alice = hub.user("alice")
    base = np.random.default_rng(1).standard_normal(WIDTH)
    hub.published("alice", "a", alice, _sd1(base))
    hub.published("alice", "other", alice, _sd1(np.random.default_rng(9).standard_normal(WIDTH)))
    # b holds the highest embedding id and the two highest version ids, and is a's nearest.
    hub.published("alice", "b", alice, _sd1(_near(base, 0.1, 2)))
    hub.published("alice", "b", alice, _sd1(_near(base, 0.1, 3)))
    assert _similar(hub, "a")[0] == "b"  # the index has loaded b's rows
    deleted_embedding = {e.id for e in hub.rows(Embedding) if e.name == "b"}
    deleted_versions = {v.id for v in hub.rows(EmbeddingVersion)} - _version_ids(hub, "a", "other")
    r = hub.client.delete("/api/v1/embeddings/alice/b", headers=auth(alice))
    assert r.status_code == 204, r.text

    # c is a's nearest now, but less near than b was: a row the index still holds for b must
    # neither stand in for c's version nor crowd c out as "the same embedding".
    hub.published("alice", "c", alice, _sd1(_near(base, 0.6, 4)))
    c_embedding = {e.id for e in hub.rows(Embedding) if e.name == "c"}
    assert not c_embedding & deleted_embedding
    c_version = _version_ids(hub, "c")
    assert not c_version & deleted_versions
    assert min(c_version) > max(deleted_versions)
    assert _similar(hub, "a")[0] == "c"


def _version_ids(hub: Hub, *names: str) -> set[int]:
    embeddings = {e.id for e in hub.rows(Embedding) if e.name in names}
    return {v.id for v in hub.rows(EmbeddingVersion) if v.embedding_id in embeddings}


def _similar(hub: Hub, name: str) -> list[str]:
    r = hub.get(f"/api/v1/embeddings/alice/{name}/similar")
    assert r.status_code == 200, r.text
    return [i["name"] for i in r.json()["items"]]
