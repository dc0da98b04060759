"""Private embeddings never leak: outsiders get 404 (never 403) on every route, members see
them by role; API tokens are shown once, stored hashed, scoped, expiring and revocable."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from registry.accounts.models import ApiToken
from registry.db import session_scope
from tests.registry.helpers import Hub, assert_problem, auth, embedding_bytes


@pytest.fixture
def world(hub: Hub) -> dict[str, Any]:
    """alice's private ``alice/secret`` and org acme's private ``acme/brand`` (rita reads,
    max maintains), each with a tag ``stable``; a public ``alice/open`` to compare with."""
    tokens = {name: hub.user(name) for name in ("alice", "bob", "rita", "max")}
    hub.org("acme", "alice", {"rita": "reader", "max": "maintainer"})
    items: dict[str, dict[str, Any]] = {}
    for ref in ("alice/secret", "acme/brand"):
        ns, name = ref.split("/")
        data = embedding_bytes(token="<hidden>")
        body = hub.published(
            ns,
            name,
            tokens["alice"],
            data,
            {"visibility": "private", "description": "hidden gem", "tags": ["hidden"]},
        )
        assert (
            hub.client.put(
                f"/api/v1/embeddings/{ref}/tags/stable",
                json={"version": 1},
                headers=auth(tokens["alice"]),
            ).status_code
            == 200
        )
        items[ref] = {**body, "upload_sha256": hashlib.sha256(data).hexdigest()}
    hub.published(
        "alice", "open", tokens["alice"], meta={"description": "hidden gem too", "tags": ["hidden"]}
    )
    return {"tokens": tokens, "items": items}


def _every_route(hub: Hub, ref: str, digest: str, token: str | None) -> list[tuple[str, Any]]:
    base = f"/api/v1/embeddings/{ref}"
    h = auth(token)
    c = hub.client
    return [
        ("get", c.get(base, headers=h)),
        ("versions", c.get(f"{base}/versions", headers=h)),
        ("version by number", c.get(f"{base}/versions/1", headers=h)),
        ("version by tag", c.get(f"{base}/versions/stable", headers=h)),
        ("version latest", c.get(f"{base}/versions/latest", headers=h)),
        ("version by digest", c.get(f"{base}/versions/{digest}", headers=h)),
        ("file", c.get(f"{base}/versions/1/file", headers=h, follow_redirects=False)),
        ("file a1111", c.get(f"{base}/versions/1/file?format=a1111", headers=h)),
        ("star", c.put(f"{base}/star", headers=h)),
        ("unstar", c.delete(f"{base}/star", headers=h)),
        ("put tag", c.put(f"{base}/tags/mine", json={"version": 1}, headers=h)),
        ("delete tag", c.delete(f"{base}/tags/stable", headers=h)),
        ("yank", c.post(f"{base}/versions/1/yank", headers=h)),
        ("unyank", c.post(f"{base}/versions/1/unyank", headers=h)),
        ("patch", c.patch(base, json={"description": "pwned"}, headers=h)),
        ("delete", c.delete(base, headers=h)),
        ("head blob", c.head(f"/api/v1/blobs/{digest}", headers=h)),
    ]


@pytest.mark.parametrize("who", ["anonymous", "bob"])
def test_outsiders_get_404_on_every_route(hub: Hub, world: dict[str, Any], who: str) -> None:
    token = world["tokens"].get(who)
    for ref, item in world["items"].items():
        for route, response in _every_route(hub, ref, item["digest"], token):
            assert response.status_code == 404, (ref, route, response.status_code, response.text)
            if route != "head blob":
                assert_problem(response, 404, "not_found")
            else:
                assert response.headers.get("x-error-code") == "not_found"
        # by-hash lookups find nothing
        for value in (
            item["digest"],
            item["upload_sha256"],
            item["upload_sha256"][:10],
            item["upload_sha256"][:12],
            item["digest"].removeprefix("sha256:")[:12],
        ):
            response = hub.get(f"/api/v1/lookup?hash={value}", token)
            assert response.status_code == 200 and response.json()["items"] == [], (ref, value)
    # search: the private items are not in the results and not in the counts
    for query in (
        "",
        "q=hidden",
        "q=gem",
        "tag=hidden",
        "author=alice",
        "author=acme",
        "q=secret",
        "q=brand",
    ):
        for sort in ("downloads", "recent"):
            response = hub.get(f"/api/v1/embeddings?{query}&sort={sort}", token)
            assert response.status_code == 200, response.text
            names = [f"{i['namespace']}/{i['name']}" for i in response.json()["items"]]
            assert not set(names) & set(world["items"]), (query, names)
    assert [i["name"] for i in hub.get("/api/v1/embeddings?q=hidden", token).json()["items"]] == [
        "open"
    ]
    # nothing changed behind the 404s
    owner = world["tokens"]["alice"]
    for ref in world["items"]:
        info = hub.get(f"/api/v1/embeddings/{ref}", owner).json()
        assert info["description"] == "hidden gem" and info["stars"] == 0
        assert info["downloads"] == 0 and info["version_tags"] == {"latest": 1, "stable": 1}
        assert [v["yanked"] for v in info["versions"]] == [False]


def test_a_404_for_a_private_item_looks_like_one_for_a_missing_item(
    hub: Hub, world: dict[str, Any]
) -> None:
    hidden = hub.get("/api/v1/embeddings/alice/secret").json()
    missing = hub.get("/api/v1/embeddings/alice/nothing").json()
    assert hidden["detail"].replace("secret", "X") == missing["detail"].replace("nothing", "X")


def test_namespace_members_see_private_items(hub: Hub, world: dict[str, Any]) -> None:
    tokens = world["tokens"]
    for who, refs in (
        ("alice", ["alice/secret", "acme/brand"]),
        ("rita", ["acme/brand"]),
        ("max", ["acme/brand"]),
    ):
        for ref in refs:
            item = world["items"][ref]
            base = f"/api/v1/embeddings/{ref}"
            assert hub.get(base, tokens[who]).status_code == 200
            assert hub.get(f"{base}/versions/stable", tokens[who]).json()["number"] == 1
            file = hub.get(f"{base}/versions/1/file", tokens[who], follow_redirects=False)
            assert file.status_code in (200, 307)
            assert (
                hub.client.head(
                    f"/api/v1/blobs/{item['digest']}", headers=auth(tokens[who])
                ).status_code
                == 200
            )
            hits = hub.get(f"/api/v1/lookup?hash={item['upload_sha256'][:10]}", tokens[who]).json()[
                "items"
            ]
            assert [h["ref"] for h in hits] == [f"{ref}@1"]
            names = {
                f"{i['namespace']}/{i['name']}"
                for i in hub.get("/api/v1/embeddings?q=hidden", tokens[who]).json()["items"]
            }
            assert ref in names
    # rita is not in alice's personal namespace
    assert hub.get("/api/v1/embeddings/alice/secret", tokens["rita"]).status_code == 404


def test_org_roles_decide_who_writes(hub: Hub, world: dict[str, Any]) -> None:
    tokens = world["tokens"]
    assert_problem(
        hub.publish("acme", "brand", tokens["rita"], embedding_bytes()), 403, "forbidden"
    )
    assert_problem(hub.publish("acme", "new", tokens["rita"], embedding_bytes()), 403, "forbidden")
    assert_problem(
        hub.client.post(
            "/api/v1/embeddings/acme/brand/versions/1/yank", headers=auth(tokens["rita"])
        ),
        403,
        "forbidden",
    )
    response = hub.publish("acme", "brand", tokens["max"], embedding_bytes())
    assert response.status_code == 201 and response.json()["number"] == 2
    assert hub.publish("acme", "new", tokens["max"], embedding_bytes()).status_code == 201
    # a maintainer may not delete; the owner may
    assert_problem(
        hub.client.delete("/api/v1/embeddings/acme/new", headers=auth(tokens["max"])),
        403,
        "forbidden",
    )
    assert (
        hub.client.delete("/api/v1/embeddings/acme/new", headers=auth(tokens["alice"])).status_code
        == 204
    )


def test_token_secret_is_shown_once_and_stored_hashed(hub: Hub) -> None:
    first = hub.user("alice")
    created = hub.client.post(
        "/api/v1/tokens", json={"name": "laptop", "scopes": ["read"]}, headers=auth(first)
    )
    assert created.status_code == 201, created.text
    secret = created.json()["token"]
    assert secret.startswith(created.json()["prefix"])
    listing = hub.get("/api/v1/tokens", first)
    assert listing.status_code == 200
    assert secret not in listing.text and first not in listing.text
    assert all("token" not in item for item in listing.json()["items"])
    assert {i["name"] for i in listing.json()["items"]} == {"test", "laptop"}
    rows = hub.rows(ApiToken)
    for row in rows:
        values = [str(v) for v in row.model_dump().values()]
        assert not any(secret in v or first in v for v in values)
    assert hashlib.sha256(secret.encode()).hexdigest() in {r.token_hash for r in rows}
    who = hub.get("/api/v1/whoami", secret).json()
    assert who["username"] == "alice" and who["scopes"] == ["read"]


def test_revoked_token_is_anonymous(hub: Hub) -> None:
    token = hub.user("alice")
    spare = hub.token("alice")
    assert hub.publish("alice", "cat", spare, embedding_bytes()).status_code == 201
    token_id = next(
        i["id"] for i in hub.get("/api/v1/tokens", token).json()["items"] if i["name"] == "extra"
    )
    assert hub.client.delete(f"/api/v1/tokens/{token_id}", headers=auth(token)).status_code == 204
    assert_problem(hub.publish("alice", "cat", spare, embedding_bytes()), 401, "unauthorized")
    assert_problem(hub.get("/api/v1/whoami", spare), 401, "unauthorized")
    listed = {i["id"]: i["revoked"] for i in hub.get("/api/v1/tokens", token).json()["items"]}
    assert listed[token_id] is True
    # another user cannot revoke alice's token (and cannot tell it exists)
    bob = hub.user("bob")
    own_id = next(i for i, revoked in listed.items() if not revoked)
    assert_problem(
        hub.client.delete(f"/api/v1/tokens/{own_id}", headers=auth(bob)), 404, "not_found"
    )
    assert hub.publish("alice", "cat", token, embedding_bytes()).status_code == 201


def test_expired_token_is_anonymous(hub: Hub) -> None:
    hub.user("alice")
    token = hub.token("alice", expires_in_days=30)
    assert hub.publish("alice", "cat", token, embedding_bytes()).status_code == 201
    with session_scope(hub.engine) as session:
        row = session.exec(select(ApiToken).where(ApiToken.name == "extra")).one()
        row.expires_at = datetime.now(UTC) - timedelta(minutes=1)
        session.add(row)
    assert_problem(hub.publish("alice", "cat", token, embedding_bytes()), 401, "unauthorized")
    assert_problem(hub.get("/api/v1/whoami", token), 401, "unauthorized")


def test_scopes_are_enforced(hub: Hub) -> None:
    hub.user("alice")
    read = hub.token("alice", ["read"])
    write = hub.token("alice", ["read", "write"])
    hub.published("alice", "cat", write, meta={"visibility": "private"})
    # read: may see and star private items of its own namespace, not publish or edit
    assert hub.get("/api/v1/embeddings/alice/cat", read).status_code == 200
    assert hub.client.put("/api/v1/embeddings/alice/cat/star", headers=auth(read)).json() == {
        "starred": True,
        "stars": 1,
    }
    assert_problem(
        hub.client.patch(
            "/api/v1/embeddings/alice/cat", json={"description": "x"}, headers=auth(read)
        ),
        403,
        "forbidden",
    )
    assert_problem(
        hub.client.post("/api/v1/embeddings/alice/cat/versions/1/yank", headers=auth(read)),
        403,
        "forbidden",
    )
    # a token cannot mint a token with more scopes than it has
    assert_problem(
        hub.client.post("/api/v1/tokens", json={"scopes": ["write"]}, headers=auth(read)),
        403,
        "forbidden",
    )
    # creating users needs the admin scope
    assert_problem(
        hub.client.post("/api/v1/users", json={"username": "eve"}, headers=auth(write)),
        403,
        "forbidden",
    )
    admin = hub.user("root", admin=True, scopes=["read", "write", "admin"])
    created = hub.client.post("/api/v1/users", json={"username": "eve"}, headers=auth(admin))
    assert created.status_code == 201 and created.json()["token"]
    assert hub.get("/api/v1/whoami", created.json()["token"]).json()["username"] == "eve"
    # sign-up is closed by default
    assert hub.client.post("/api/v1/users", json={"username": "mallory"}).status_code == 401


def test_org_membership_routes(hub: Hub) -> None:
    alice, bob = hub.user("alice"), hub.user("bob")
    assert (
        hub.client.post("/api/v1/orgs", json={"name": "acme"}, headers=auth(alice)).status_code
        == 201
    )
    assert_problem(
        hub.client.put(
            "/api/v1/orgs/acme/members/alice", json={"role": "reader"}, headers=auth(bob)
        ),
        403,
        "forbidden",
    )
    put = hub.client.put(
        "/api/v1/orgs/acme/members/bob", json={"role": "reader"}, headers=auth(alice)
    )
    assert put.status_code == 200 and put.json() == {"username": "bob", "role": "reader"}
    members = hub.get("/api/v1/orgs/acme/members", bob).json()["items"]
    assert members == [
        {"username": "alice", "role": "owner"},
        {"username": "bob", "role": "reader"},
    ]
    assert_problem(hub.get("/api/v1/orgs/acme/members"), 404, "not_found")
    assert_problem(
        hub.client.delete("/api/v1/orgs/acme/members/alice", headers=auth(alice)), 409, "conflict"
    )  # the last owner stays
    assert (
        hub.client.delete("/api/v1/orgs/acme/members/bob", headers=auth(alice)).status_code == 204
    )
    assert_problem(hub.get("/api/v1/orgs/acme/members", bob), 404, "not_found")
