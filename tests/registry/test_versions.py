"""Versions after publishing: tags, yank/unyank, metadata edits, stars, deletion, downloads
(local bytes with an ETag; S3 presigned redirects) and converted formats."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import httpx
import pytest

from client.core.canonical import canonical_bytes
from client.core.formats import read_embedding
from tests.registry.helpers import Hub, assert_problem, auth, embedding_bytes, random_vectors

BASE = "/api/v1/embeddings/alice/cat"


@pytest.fixture
def alice(hub: Hub) -> str:
    token = hub.user("alice")
    for _ in range(3):
        hub.published("alice", "cat", token, meta={"tags": ["cats"], "description": "cats"})
    return token


def _tags(hub: Hub) -> dict[str, int]:
    return hub.get(BASE).json()["version_tags"]


def test_tags_move_and_latest_is_automatic(hub: Hub, alice: str) -> None:
    assert _tags(hub) == {"latest": 3}
    put = hub.client.put(f"{BASE}/tags/stable", json={"version": 1}, headers=auth(alice))
    assert put.status_code == 200 and put.json() == {"latest": 3, "stable": 1}
    assert hub.get(f"{BASE}/versions/stable").json()["number"] == 1
    assert hub.get(f"{BASE}/versions/1").json()["tags"] == ["stable"]
    # move it
    hub.client.put(f"{BASE}/tags/stable", json={"version": 2}, headers=auth(alice))
    assert hub.get(f"{BASE}/versions/stable").json()["number"] == 2
    # latest cannot be set, numbers are not tags, unknown versions are refused
    for tag in ("latest", "7"):
        assert_problem(
            hub.client.put(f"{BASE}/tags/{tag}", json={"version": 1}, headers=auth(alice)),
            400,
            "bad_request",
        )
    assert_problem(
        hub.client.put(f"{BASE}/tags/future", json={"version": 9}, headers=auth(alice)),
        404,
        "not_found",
    )
    assert_problem(
        hub.client.put(f"{BASE}/tags/stable", json={"version": "one"}, headers=auth(alice)),
        400,
        "bad_request",
    )
    assert_problem(
        hub.client.put(f"{BASE}/tags/Bad Tag", json={"version": 1}, headers=auth(alice)),
        422,
        "bad_name",
    )
    # delete
    assert hub.client.delete(f"{BASE}/tags/stable", headers=auth(alice)).status_code == 204
    assert _tags(hub) == {"latest": 3}
    assert_problem(hub.get(f"{BASE}/versions/stable"), 404, "not_found")
    assert_problem(hub.client.delete(f"{BASE}/tags/stable", headers=auth(alice)), 404, "not_found")
    assert_problem(hub.client.delete(f"{BASE}/tags/latest", headers=auth(alice)), 404, "not_found")
    # a new version moves latest
    hub.published("alice", "cat", alice)
    assert hub.get(f"{BASE}/versions/latest").json()["number"] == 4


def test_yank_hides_from_latest_and_search_but_exact_pulls_work(hub: Hub, alice: str) -> None:
    v3 = hub.get(f"{BASE}/versions/3").json()
    yanked = hub.client.post(f"{BASE}/versions/3/yank", headers=auth(alice))
    assert yanked.status_code == 200 and yanked.json()["yanked"] is True
    assert hub.get(f"{BASE}/versions/latest").json()["number"] == 2
    assert _tags(hub)["latest"] == 2
    assert hub.get(f"{BASE}/versions/3").json()["yanked"] is True
    assert hub.get(f"{BASE}/versions/{v3['digest']}").json()["number"] == 3
    file = hub.get(f"{BASE}/versions/3/file", follow_redirects=False)
    assert file.status_code in (200, 307)
    # all versions yanked -> no latest, gone from search, still pullable by number
    for n in (1, 2):
        hub.client.post(f"{BASE}/versions/{n}/yank", headers=auth(alice))
    assert_problem(hub.get(f"{BASE}/versions/latest"), 404, "not_found")
    assert hub.get(BASE).json()["latest"] is None
    assert hub.get("/api/v1/embeddings?q=cats").json()["items"] == []
    assert hub.get(f"{BASE}/versions/1").status_code == 200
    # unyank brings it back
    back = hub.client.post(f"{BASE}/versions/3/unyank", headers=auth(alice))
    assert back.status_code == 200 and back.json()["yanked"] is False
    assert hub.get(f"{BASE}/versions/latest").json()["number"] == 3
    assert [i["name"] for i in hub.get("/api/v1/embeddings?q=cats").json()["items"]] == ["cat"]
    assert_problem(
        hub.client.post(f"{BASE}/versions/9/yank", headers=auth(alice)), 404, "not_found"
    )


def test_patch_metadata(hub: Hub, alice: str) -> None:
    patched = hub.client.patch(
        BASE,
        json={
            "description": "Fluffy kittens",
            "type": "subject",
            "tags": ["kittens"],
            "trigger": "<kitty>",
            "license": "mit",
        },
        headers=auth(alice),
    )
    assert patched.status_code == 200, patched.text
    info = hub.get(BASE).json()
    assert info["description"] == "Fluffy kittens" and info["type"] == "subject"
    assert info["tags"] == ["kittens"] and info["trigger"] == "<kitty>"
    assert info["license"] == "mit"
    # the search index follows
    assert [i["name"] for i in hub.get("/api/v1/embeddings?q=fluffy").json()["items"]] == ["cat"]
    assert [i["name"] for i in hub.get("/api/v1/embeddings?q=kitty").json()["items"]] == ["cat"]
    assert hub.get("/api/v1/embeddings?tag=cats").json()["items"] == []
    assert_problem(
        hub.client.patch(BASE, json={"type": "vibe"}, headers=auth(alice)), 400, "bad_request"
    )
    bob = hub.user("bob")
    assert_problem(
        hub.client.patch(BASE, json={"description": "x"}, headers=auth(bob)), 403, "forbidden"
    )
    # making it private hides it from others
    hub.client.patch(BASE, json={"visibility": "private"}, headers=auth(alice))
    assert_problem(hub.get(BASE, bob), 404, "not_found")


def test_star_and_unstar(hub: Hub, alice: str) -> None:
    bob = hub.user("bob")
    assert hub.client.put(f"{BASE}/star", headers=auth(bob)).json() == {"starred": True, "stars": 1}
    assert hub.client.put(f"{BASE}/star", headers=auth(bob)).json()["stars"] == 1  # idempotent
    assert hub.client.put(f"{BASE}/star", headers=auth(alice)).json()["stars"] == 2
    assert hub.get(BASE).json()["stars"] == 2
    assert hub.client.delete(f"{BASE}/star", headers=auth(bob)).json() == {
        "starred": False,
        "stars": 1,
    }
    assert hub.client.delete(f"{BASE}/star", headers=auth(bob)).json()["stars"] == 1
    assert hub.get(BASE).json()["stars"] == 1
    assert_problem(hub.client.put(f"{BASE}/star"), 401, "unauthorized")


def test_delete_embedding_owner_only(hub: Hub, alice: str) -> None:
    max_ = hub.user("max")
    hub.org("acme", "alice", {"max": "maintainer"})
    hub.published("acme", "logo", alice)
    assert_problem(
        hub.client.delete("/api/v1/embeddings/acme/logo", headers=auth(max_)), 403, "forbidden"
    )
    assert_problem(hub.client.delete(BASE, headers=auth(max_)), 403, "forbidden")
    assert hub.client.delete("/api/v1/embeddings/acme/logo", headers=auth(alice)).status_code == 204
    hub.client.put(f"{BASE}/tags/stable", json={"version": 1}, headers=auth(alice))
    hub.client.put(f"{BASE}/star", headers=auth(alice))
    digest = hub.get(f"{BASE}/versions/1").json()["digest"]
    assert hub.client.delete(BASE, headers=auth(alice)).status_code == 204
    assert_problem(hub.get(BASE), 404, "not_found")
    assert hub.get("/api/v1/embeddings?q=cats").json()["items"] == []
    assert hub.get(f"/api/v1/lookup?hash={digest}").json()["items"] == []
    assert hub.client.head(f"/api/v1/blobs/{digest}").status_code == 404
    # the name can be used again, starting at 1
    assert hub.published("alice", "cat", alice)["number"] == 1


def test_download_counts_and_bytes(hub: Hub) -> None:
    token = hub.user("alice")
    vectors = random_vectors(token="<cat>")
    body = hub.published("alice", "cat", token, canonical_bytes(vectors))
    digest = body["digest"]
    response = hub.get(f"{BASE}/versions/1/file", follow_redirects=False)
    if hub.backend == "sqlite-local":
        assert response.status_code == 200
        assert response.headers["etag"].strip('"') == digest
        content = response.content
    else:
        assert response.status_code == 307
        url = response.headers["location"]
        assert url.startswith(hub.settings.s3_endpoint_url) and "Signature" in url
        fetched = httpx.get(url, timeout=10)
        assert fetched.status_code == 200
        content = fetched.content
    assert "sha256:" + hashlib.sha256(content).hexdigest() == digest
    assert read_embedding(content).digest == digest
    # by tag and by digest too; each download is counted
    assert hub.get(f"{BASE}/versions/latest/file", follow_redirects=False).status_code in (200, 307)
    assert hub.get(f"{BASE}/versions/{digest}/file", follow_redirects=False).status_code in (
        200,
        307,
    )
    assert hub.get(BASE).json()["downloads"] == 3
    assert_problem(hub.get(f"{BASE}/versions/5/file"), 404, "not_found")
    assert hub.get(BASE).json()["downloads"] == 3


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
@pytest.mark.parametrize("fmt", ["a1111", "kohya", "diffusers"])
@pytest.mark.parametrize("backend", ["sqlite-local"])
def test_converted_formats_read_back_to_the_same_digest(
    make_hub,
    backend: str,
    fmt: str,
    family: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    hub = make_hub(backend)
    token = hub.user("alice")
    digest = hub.published("alice", "cat", token, embedding_bytes(family, 2, token="<cat>"))[
        "digest"
    ]
    response = hub.get(f"{BASE}/versions/1/file?format={fmt}")
    assert response.status_code == 200, response.text
    assert response.headers["etag"].strip('"') == digest
    if response.headers["content-type"].startswith("application/zip"):
        folder = tmp_path / "pair"
        zipfile.ZipFile(io.BytesIO(response.content)).extractall(folder)
        back = read_embedding(folder)
    else:
        back = read_embedding(response.content)
    assert back.digest == digest and back.family.name == family
    if fmt == "diffusers":
        assert back.token == "<cat>"
    assert hub.get(BASE).json()["downloads"] == 1


@pytest.mark.parametrize("backend", ["postgres-s3"])
def test_converted_format_on_s3_is_served_not_redirected(make_hub, backend: str) -> None:  # type: ignore[no-untyped-def]
    hub = make_hub(backend)
    token = hub.user("alice")
    digest = hub.published("alice", "cat", token)["digest"]
    response = hub.get(f"{BASE}/versions/1/file?format=a1111", follow_redirects=False)
    assert response.status_code == 200, response.text
    assert read_embedding(response.content).digest == digest
