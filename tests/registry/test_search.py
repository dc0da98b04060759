"""Community browsing: full-text search, filters, sorts and cursor pages that never skip or
repeat an item, with private items only for those who may see them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from registry.embeddings.search import trending_score
from tests.registry.helpers import Hub, auth, embedding_bytes

FAMILIES = ["sd1", "sd2", "sdxl"]
TYPES = ["style", "object", "subject", "negative", None]
TAGS = [["anime"], ["photo", "portrait"], ["anime", "portrait"], [], ["landscape"]]
AUTHORS = ["alice", "bob", "acme"]
SPECIAL = {
    # name: (description, tags, trigger, type)
    "dragon-scales": ("shiny reptile skin", ["fantasy"], "<drgn>", "object"),
    "watercolor-style": ("soft painted look", ["painting"], "<wc>", "style"),
    "bad-hands": ("fixes extra fingers", ["negative-prompt"], "<badhand>", "negative"),
}


def _seed(hub: Hub) -> dict[str, Any]:
    tokens = {u: hub.user(u) for u in ("alice", "bob", "carol")}
    hub.org("acme", "alice")
    items: dict[str, dict[str, Any]] = {}
    names = list(SPECIAL) + [f"filler-{i:02d}" for i in range(22)]
    for i, name in enumerate(names):
        ns = AUTHORS[i % 3]
        family = FAMILIES[i % 3] if name not in SPECIAL else "sd1"
        if name in SPECIAL:
            description, tags, trigger, type_ = SPECIAL[name]
        else:
            description, tags, trigger, type_ = (
                f"generic filler concept {i}",
                TAGS[i % 5],
                f"<fill{i}>",
                TYPES[i % 5],
            )
        meta = {"description": description, "tags": tags, "trigger": trigger}
        if type_:
            meta["type"] = type_
        owner = "alice" if ns == "acme" else ns
        hub.published(ns, name, tokens[owner], embedding_bytes(family), meta)
        items[f"{ns}/{name}"] = {
            "family": family,
            "type": type_,
            "tags": tags,
            "ns": ns,
            "downloads": i % 4,
            "stars": 0,
        }
    for i, ref in enumerate(items):
        for _ in range(items[ref]["downloads"]):
            assert hub.get(
                f"/api/v1/embeddings/{ref}/versions/1/file", follow_redirects=False
            ).status_code in (200, 307)
        for k, user in enumerate(("alice", "bob", "carol")):
            if (i + k) % 5 == 0:
                hub.client.put(f"/api/v1/embeddings/{ref}/star", headers=auth(tokens[user]))
                items[ref]["stars"] += 1
    # one private item of bob's
    hub.published(
        "bob",
        "hidden-dragon",
        tokens["bob"],
        embedding_bytes(),
        {"visibility": "private", "description": "dragon", "tags": ["anime"]},
    )
    return {"tokens": tokens, "items": items}


@pytest.fixture
def seeded(hub: Hub) -> dict[str, Any]:
    return _seed(hub)


def _ref(item: dict[str, Any]) -> str:
    return f"{item['namespace']}/{item['name']}"


def walk(
    hub: Hub, query: str, token: str | None = None, limit: int = 7, between_pages=None
) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Every page of a search, following ``next_cursor``."""
    out: list[dict[str, Any]] = []
    cursor = None
    for page in range(50):
        url = f"/api/v1/embeddings?{query}&limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        response = hub.get(url, token)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        out += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return out
        assert len(body["items"]) == limit
        if between_pages is not None and page == 0:
            between_pages()
    raise AssertionError("pagination did not end")


def refs(hub: Hub, query: str, token: str | None = None) -> set[str]:
    found = [_ref(i) for i in walk(hub, query, token, limit=100)]
    assert len(found) == len(set(found))
    return set(found)


def test_text_search_filters_and_privacy(hub: Hub, seeded: dict[str, Any]) -> None:
    """One seeded registry per backend, three checks (seeding is the slow part)."""
    _text_search(hub, seeded)
    _filters(hub, seeded)
    _private_items_only_for_those_who_may_see_them(hub, seeded)


def _text_search(hub: Hub, seeded: dict[str, Any]) -> None:
    cases = {
        "q=dragon": {"alice/dragon-scales"},  # a word of the name
        "q=drag": {"alice/dragon-scales"},  # a prefix
        "q=scales": {"alice/dragon-scales"},
        "q=reptile": {"alice/dragon-scales"},  # description
        "q=REPTILE": {"alice/dragon-scales"},  # case-insensitive
        "q=painting": {"bob/watercolor-style"},  # tag
        "q=badhand": {"acme/bad-hands"},  # trigger, without < >
        "q=soft%20painted": {"bob/watercolor-style"},  # every word must match
        "q=soft%20dragon": set(),
        "q=zebra": set(),
    }
    for query, expected in cases.items():
        assert refs(hub, query) == expected, query
    fillers = refs(hub, "q=filler")
    assert len(fillers) == 22 and all("filler" in r for r in fillers)
    # punctuation alone is no query at all
    assert len(refs(hub, "q=%3C%3E")) == 25


def _filters(hub: Hub, seeded: dict[str, Any]) -> None:
    items = seeded["items"]
    for family in FAMILIES:
        expected = {r for r, i in items.items() if i["family"] == family}
        assert refs(hub, f"family={family}") == expected and expected
    for type_ in ("style", "object", "subject", "negative"):
        expected = {r for r, i in items.items() if i["type"] == type_}
        assert refs(hub, f"type={type_}") == expected and expected
    for tag in ("anime", "portrait", "landscape", "fantasy"):
        expected = {r for r, i in items.items() if tag in i["tags"]}
        assert refs(hub, f"tag={tag}") == expected and expected
    for author in AUTHORS:
        expected = {r for r, i in items.items() if i["ns"] == author}
        assert refs(hub, f"author={author}") == expected and expected
    combined = {
        r
        for r, i in items.items()
        if i["ns"] == "bob" and "anime" in i["tags"] and i["family"] == "sd2"
    }
    assert refs(hub, "author=bob&tag=anime&family=sd2") == combined
    assert refs(hub, "q=filler&type=style") == {
        r for r, i in items.items() if i["type"] == "style" and "filler" in r
    }
    assert refs(hub, "family=sd3") == set()


def test_sorts_and_cursor_pages(hub: Hub, seeded: dict[str, Any]) -> None:
    items = seeded["items"]
    for sort in ("downloads", "stars", "recent", "trending"):
        pages = walk(hub, f"sort={sort}", limit=7)
        found = [_ref(i) for i in pages]
        assert len(found) == len(set(found)) == 25, sort  # no repeats, no gaps
        assert set(found) == set(items)
        if sort in ("downloads", "stars"):
            values = [i[sort] for i in pages]
            assert values == sorted(values, reverse=True)
            assert values == sorted((items[r][sort] for r in found), reverse=True)
        elif sort == "recent":
            values = [datetime.fromisoformat(i["updated_at"]) for i in pages]
            assert values == sorted(values, reverse=True)
        else:
            scores = [
                trending_score(i["downloads"], i["stars"], datetime.fromisoformat(i["created_at"]))
                for i in pages
            ]
            assert scores == sorted(scores, reverse=True), list(zip(found, scores, strict=True))
        # the same walk with a filter
        anime = [_ref(i) for i in walk(hub, f"sort={sort}&tag=anime", limit=3)]
        assert sorted(anime) == sorted({r for r, i in items.items() if "anime" in i["tags"]})


def test_pages_survive_a_publish_between_pages(hub: Hub, seeded: dict[str, Any]) -> None:
    alice = seeded["tokens"]["alice"]
    for sort in ("downloads", "recent", "trending"):

        def publish_more(sort: str = sort) -> None:
            hub.published("alice", f"late-{sort}", alice, meta={"tags": ["anime"]})

        found = [_ref(i) for i in walk(hub, f"sort={sort}", limit=7, between_pages=publish_more)]
        assert len(found) == len(set(found)), sort
        assert set(seeded["items"]) <= set(found), sort
        if sort == "downloads":
            # no downloads: sorts after the first page, so it is seen exactly once
            assert "alice/late-downloads" in found


def _private_items_only_for_those_who_may_see_them(hub: Hub, seeded: dict[str, Any]) -> None:
    tokens = seeded["tokens"]
    for token in (None, tokens["alice"], tokens["carol"]):
        assert "bob/hidden-dragon" not in refs(hub, "q=dragon", token)
        assert "bob/hidden-dragon" not in refs(hub, "tag=anime", token)
        assert len(refs(hub, "sort=recent", token)) == 25
    assert refs(hub, "q=dragon", tokens["bob"]) == {"alice/dragon-scales", "bob/hidden-dragon"}
    assert "bob/hidden-dragon" in refs(hub, "author=bob", tokens["bob"])
    assert len(refs(hub, "sort=recent", tokens["bob"])) == 26
