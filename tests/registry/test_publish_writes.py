"""A new version writes only what it changes (issue 12): the embedding's tags and its row in the
search index are rewritten only when they change, and the rows a version adds (hashes,
summaries) go in one statement each."""

from __future__ import annotations

from tests.registry.helpers import Hub
from tests.registry.test_write_path import statements

TAGS = {"tags": ["dogs", "brown"]}


def _writes(seen: list[str], table: str) -> list[str]:
    return [s for s in seen if s.split()[0] in ("INSERT", "DELETE", "UPDATE") and table in s]


def _found(hub: Hub, word: str) -> list[str]:
    response = hub.get(f"/api/v1/embeddings?q={word}")
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


def test_a_version_with_the_same_tags_rewrites_neither_tags_nor_search_index(hub: Hub) -> None:
    token = hub.user("alice")
    hub.published("alice", "dog", token, meta=TAGS)
    with statements(hub) as seen:
        body = hub.published("alice", "dog", token, meta=TAGS)
    assert body["number"] == 2
    assert not _writes(seen, "embedding_tag") and not _writes(seen, "embedding_fts"), seen
    assert len(_writes(seen, "version_hash")) == 1 and len(_writes(seen, "version_summary")) == 1
    work = [s for s in seen if s not in ("BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")]
    assert len(work) <= 12, "\n".join(work)
    assert _found(hub, "dogs") == ["dog"]


def test_changed_tags_are_written_and_searchable(hub: Hub) -> None:
    token = hub.user("alice")
    hub.published("alice", "dog", token, meta=TAGS)
    with statements(hub) as seen:
        hub.published("alice", "dog", token, meta={"tags": ["dogs", "puppy"]})
    assert _writes(seen, "embedding_tag") and _writes(seen, "embedding_fts")
    assert hub.get("/api/v1/embeddings/alice/dog").json()["tags"] == ["dogs", "puppy"]
    assert _found(hub, "puppy") == ["dog"] and _found(hub, "brown") == []
