"""Similar embeddings (issue 10): nearest visible embeddings of the same family by the cosine of
their summary vectors, and near-duplicates reported at publish — never a private item to someone
who may not see it."""

from __future__ import annotations

import numpy as np

from client.core.canonical import canonical_bytes
from client.core.embedding import Embedding as Vectors
from tests.registry.helpers import Hub, assert_problem, embedding_bytes

WIDTH = 768


def _sd1(vectors: np.ndarray, token: str = "<x>") -> bytes:
    tensors = {"emb_params": np.asarray(vectors, np.float32).reshape(-1, WIDTH)}
    return canonical_bytes(Vectors.from_tensors(tensors, token=token, source_format="test"))


def _near(base: np.ndarray, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return base + noise * rng.standard_normal(base.shape) * np.linalg.norm(base) / np.sqrt(WIDTH)


def _world(hub: Hub) -> tuple[str, str, np.ndarray]:
    alice = hub.user("alice")
    bob = hub.user("bob")
    base = np.random.default_rng(1).standard_normal(WIDTH)
    hub.published("alice", "query", alice, _sd1(base))
    hub.published("alice", "close", alice, _sd1(_near(base, 0.3, 2)))
    hub.published("alice", "far", alice, _sd1(_near(base, 1.5, 3)))
    hub.published("alice", "other", alice, _sd1(np.random.default_rng(4).standard_normal(WIDTH)))
    hub.published("bob", "hidden", bob, _sd1(_near(base, 0.1, 5)), {"visibility": "private"})
    hub.published("alice", "xl", alice, embedding_bytes("sdxl"))
    return alice, bob, base


def test_similar_ranks_same_family_visible_embeddings_by_cosine(hub: Hub) -> None:
    alice, bob, _ = _world(hub)
    r = hub.get("/api/v1/embeddings/alice/query/similar?limit=10", alice)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    names = [i["name"] for i in items]
    assert names[:3] == ["close", "far", "other"], names
    assert "query" not in names and "xl" not in names  # itself and another family
    assert "hidden" not in names  # bob's private item: alice may not see it
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True) and 0.9 < scores[0] < 1.0
    assert items[0]["ref"] == "alice/close@1" and items[0]["family"] == "sd1"
    # bob sees his own private item, nearest of all.
    mine = hub.get("/api/v1/embeddings/alice/query/similar", bob).json()["items"]
    assert mine[0]["name"] == "hidden"


def test_a_private_embeddings_neighbours_are_a_404_to_outsiders(hub: Hub) -> None:
    _, bob, _ = _world(hub)
    assert hub.get("/api/v1/embeddings/bob/hidden/similar", bob).status_code == 200
    for token in (None, hub.user("oscar")):
        r = hub.get("/api/v1/embeddings/bob/hidden/similar", token)
        assert_problem(r, 404, "not_found")
    assert_problem(hub.get("/api/v1/embeddings/alice/query/similar?limit=0"), 400, "bad_request")


def test_publish_reports_near_duplicates_the_publisher_can_see(hub: Hub) -> None:
    alice, bob, base = _world(hub)
    carol = hub.user("carol")
    # The same direction at another scale (a re-upload, re-saved): cosine 1.
    body = hub.published("carol", "copy", carol, _sd1(base * 1.7))
    dupes = body["near_duplicates"]
    assert [d["ref"] for d in dupes] == ["alice/query@1"], dupes
    assert dupes[0]["score"] >= 0.99
    # Close (cosine ~0.95) but under the threshold: not a duplicate.
    fresh = hub.published("carol", "fresh", carol, _sd1(_near(base, 0.3, 9)))
    assert fresh["near_duplicates"] == []
    # bob's private item is never reported to carol, even as an exact copy.
    hidden = _sd1(_near(base, 0.1, 5))  # bob/hidden's bytes
    again = hub.published("carol", "hidden-copy", carol, hidden)
    assert "bob/hidden@1" not in [d["ref"] for d in again["near_duplicates"]]
    mine = hub.published("bob", "mine", bob, hidden)["near_duplicates"]
    assert "bob/hidden@1" in [d["ref"] for d in mine]


def test_a_deleted_or_yanked_embedding_is_no_longer_similar(hub: Hub) -> None:
    alice, _, _ = _world(hub)
    hub.client.post("/api/v1/embeddings/alice/close/versions/1/yank", headers=_auth(alice))
    hub.client.delete("/api/v1/embeddings/alice/far", headers=_auth(alice))
    names = [i["name"] for i in hub.get("/api/v1/embeddings/alice/query/similar").json()["items"]]
    assert names == ["other"], names


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
