"""Issue 8, defects 5 and 9: whole-string names, admin flags hidden from strangers, honest 405
answers, owners-only publication of private items, and a retried publish that finds its own
version."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from client.core.errors import BadName
from client.core.names import validate_namespace, validate_slug
from tests.registry.helpers import Hub, assert_problem, auth, embedding_bytes


@pytest.mark.parametrize("name", ["acme\n", "acme\r\n", "acme\x00", "ａcme", "acme\u0660"])
def test_names_match_the_whole_string(name: str) -> None:
    with pytest.raises(BadName):
        validate_namespace(name)
    with pytest.raises(BadName):
        validate_slug(name, "tag")


def test_a_trailing_newline_cannot_squat_a_look_alike(hub: Hub) -> None:
    alice = hub.user("alice")
    admin = hub.user("root", admin=True, scopes=["read", "write", "admin"])
    org = hub.client.post("/api/v1/orgs", json={"name": "acme\n"}, headers=auth(alice))
    assert_problem(org, 422, "bad_name")
    user = hub.client.post("/api/v1/users", json={"username": "bob\n"}, headers=auth(admin))
    assert_problem(user, 422, "bad_name")
    assert_problem(hub.publish("alice", "nl%0A", alice), 422, "bad_name")
    hub.published("alice", "cat", alice)
    tag = hub.client.put(
        "/api/v1/embeddings/alice/cat/tags/x%0A", json={"version": 1}, headers=auth(alice)
    )
    assert_problem(tag, 422, "bad_name")
    info = hub.get("/api/v1/embeddings/alice/cat", alice).json()
    assert info["version_tags"] == {"latest": 1}


def test_is_admin_shows_only_to_the_user_and_admins(hub: Hub) -> None:
    admin = hub.user("root", admin=True, scopes=["read", "write", "admin"])
    alice = hub.user("alice")
    for who in (None, alice):
        body = hub.get("/api/v1/users/root", who).json()
        assert body["username"] == "root"
        assert "is_admin" not in body, body
    assert hub.get("/api/v1/users/root", admin).json()["is_admin"] is True
    assert hub.get("/api/v1/users/alice", alice).json()["is_admin"] is False


def test_405_says_405_and_lists_the_allowed_methods(hub: Hub) -> None:
    response = hub.client.put("/api/v1/embeddings")
    body = assert_problem(response, 405, "bad_request")
    allowed = {m.strip() for m in response.headers["allow"].split(",")}
    assert "GET" in allowed and "PUT" not in allowed
    assert "PUT" in body["detail"]


def test_only_owners_make_private_org_embeddings_public(hub: Hub) -> None:
    owner = hub.user("olga")
    maintainer = hub.user("max")
    hub.org("acme", "olga", {"max": "maintainer"})
    hub.published("acme", "brand", maintainer, meta={"visibility": "private"})
    path = "/api/v1/embeddings/acme/brand"
    refused = hub.client.patch(path, json={"visibility": "public"}, headers=auth(maintainer))
    assert_problem(refused, 403, "forbidden")
    assert hub.get(path).status_code == 404  # still private
    edited = hub.client.patch(path, json={"description": "ours"}, headers=auth(maintainer))
    assert edited.status_code == 200, edited.text  # maintainers still edit the rest
    made_public = hub.client.patch(path, json={"visibility": "public"}, headers=auth(owner))
    assert made_public.status_code == 200, made_public.text
    assert hub.get(path).json()["visibility"] == "public"


class _LosingProxy:
    """A loopback HTTP proxy in front of the registry that forwards the first publish, lets
    the registry commit it, and answers the client 503 as a registry whose database dropped
    the connection at commit would: the client must retry and get the same version back."""

    def __init__(self, upstream: httpx.Client) -> None:
        self.publishes = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
                }
                answer = upstream.request(self.command, self.path, content=body, headers=headers)
                status, content = answer.status_code, answer.content
                out_headers = {"content-type": answer.headers.get("content-type", "")}
                if self.command == "POST" and self.path.endswith("/versions"):
                    proxy.publishes += 1
                    if proxy.publishes == 1:
                        status, content = (
                            503,
                            json.dumps(
                                {
                                    "code": "unavailable",
                                    "detail": "database unavailable",
                                    "status": 503,
                                }
                            ).encode(),
                        )
                        out_headers = {
                            "content-type": "application/problem+json",
                            "retry-after": "0",
                            "x-error-code": "unavailable",
                        }
                self.send_response(status)
                for k, v in out_headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PATCH = do_PUT = do_HEAD = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def losing_proxy(hub: Hub) -> Iterator[_LosingProxy]:
    proxy = _LosingProxy(hub.client)
    yield proxy
    proxy.close()


def test_a_publish_retried_after_a_lost_answer_returns_the_same_version(
    hub: Hub, losing_proxy: _LosingProxy, tmp_path: Any
) -> None:
    from client.hub import Hub as HubClient

    token = hub.user("alice")
    path = tmp_path / "cat.safetensors"
    path.write_bytes(embedding_bytes(seed=7))
    client = HubClient(losing_proxy.url, token, tmp_path / "cache")
    info = client.push(path, "alice/cat")
    assert losing_proxy.publishes == 2  # the 503 was retried
    assert info.number == 1
    versions = hub.get("/api/v1/embeddings/alice/cat/versions", token).json()["items"]
    assert [v["number"] for v in versions] == [1]
    again = hub.publish("alice", "cat", token, path.read_bytes())
    assert again.status_code == 200 and again.json()["number"] == 1
    assert again.json()["created"] is False


@pytest.mark.parametrize("tag", ["x\n", "a/b", "../x", "x?y"])
def test_the_client_refuses_a_tag_name_before_building_a_url(tag: str, tmp_path: Any) -> None:
    """A tag goes into the URL path: an unchecked one fails in httpx (newline) or names
    another route (``a/b``, ``../x``); the client refuses it as the server would."""
    from client.hub import Hub as HubClient

    client = HubClient("http://127.0.0.1:9", "lxh_unused", tmp_path / "cache")
    with pytest.raises(BadName):
        client.tag("alice/cat@1", tag)
    with pytest.raises(BadName):
        client.untag("alice/cat", tag)
