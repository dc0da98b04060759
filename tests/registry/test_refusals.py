"""Every refusal names its cause with a stable code (body and ``X-Error-Code``), a detail and
a fix; nothing is created by a refused request."""

from __future__ import annotations

import numpy as np
import pytest

from client.core.canonical import serialize_safetensors
from tests.registry.helpers import Hub, assert_problem, auth, embedding_bytes


def _assert_nothing_published(hub: Hub, ns: str = "alice", name: str = "cat") -> None:
    assert hub.get(f"/api/v1/embeddings/{ns}/{name}", hub.extra.get("token")).status_code == 404


@pytest.fixture
def alice(hub: Hub) -> str:
    token = hub.user("alice")
    hub.extra["token"] = token
    return token


def test_non_safetensors_upload_is_not_canonical(hub: Hub, alice: str) -> None:
    pickle_like = b"\x80\x02}q\x00X\x0a\x00\x00\x00string_to" + b"\x00" * 64
    body = assert_problem(
        hub.publish("alice", "cat", alice, pickle_like, filename="cat.pt"), 415, "not_canonical"
    )
    assert "hub convert" in body["detail"] or "hub push" in body["fix"]
    assert_problem(
        hub.publish("alice", "cat", alice, b"hello world, not an embedding"), 415, "not_canonical"
    )
    _assert_nothing_published(hub)


def test_diffusers_token_layout_is_not_canonical(hub: Hub, alice: str) -> None:
    diffusers = serialize_safetensors({"<cat>": np.zeros((1, 768), np.float32)})
    body = assert_problem(hub.publish("alice", "cat", alice, diffusers), 415, "not_canonical")
    assert "emb_params" in body["detail"]
    _assert_nothing_published(hub)


def test_nan_values_are_refused(hub: Hub, alice: str) -> None:
    vectors = np.ones((2, 768), np.float32)
    vectors[1, 5] = np.nan
    data = serialize_safetensors({"emb_params": vectors})
    assert_problem(hub.publish("alice", "cat", alice, data), 422, "non_finite_values")
    inf = serialize_safetensors({"emb_params": np.full((1, 768), np.inf, np.float32)})
    assert_problem(hub.publish("alice", "cat", alice, inf), 422, "non_finite_values")
    _assert_nothing_published(hub)


def test_wrong_width_is_a_bad_shape(hub: Hub, alice: str) -> None:
    data = serialize_safetensors({"emb_params": np.ones((1, 640), np.float32)})
    body = assert_problem(hub.publish("alice", "cat", alice, data), 422, "bad_shape")
    assert "640" in body["detail"]
    too_many = serialize_safetensors({"emb_params": np.ones((76, 768), np.float32)})
    assert_problem(hub.publish("alice", "cat", alice, too_many), 422, "bad_shape")
    _assert_nothing_published(hub)


@pytest.mark.parametrize("backend", ["sqlite-local"])
def test_too_large_upload(make_hub, backend: str) -> None:  # type: ignore[no-untyped-def]
    hub = make_hub(backend, max_upload_bytes=4096)
    token = hub.user("alice")
    big = embedding_bytes("sd1", 2)  # 2 x 768 x 4 bytes > 4096
    assert len(big) > 4096
    body = assert_problem(hub.publish("alice", "cat", token, big), 413, "too_large")
    assert "4096" in body["detail"]
    small = embedding_bytes("sd1", 1)
    assert len(small) <= 4096
    assert hub.publish("alice", "cat", token, small).status_code == 201


@pytest.mark.parametrize("name", ["Bad Name!", "UPPER", "-dash", "a..b", "x" * 65])
def test_bad_embedding_name(hub: Hub, alice: str, name: str) -> None:
    from urllib.parse import quote

    response = hub.publish("alice", quote(name, safe=""), alice, embedding_bytes())
    body = assert_problem(response, 422, "bad_name")
    assert "lowercase" in body["detail"] or "'..'" in body["detail"]


def test_no_token_is_unauthorized(hub: Hub, alice: str) -> None:
    assert_problem(hub.publish("alice", "cat", None, embedding_bytes()), 401, "unauthorized")
    assert_problem(
        hub.publish("alice", "cat", "lxh_not-a-real-token", embedding_bytes()), 401, "unauthorized"
    )
    _assert_nothing_published(hub)


def test_read_only_token_cannot_publish(hub: Hub, alice: str) -> None:
    read_only = hub.token("alice", ["read"])
    body = assert_problem(
        hub.publish("alice", "cat", read_only, embedding_bytes()), 403, "forbidden"
    )
    assert "write" in body["detail"]
    _assert_nothing_published(hub)


def test_writing_to_someone_elses_namespace_is_forbidden(hub: Hub, alice: str) -> None:
    bob = hub.user("bob")
    assert_problem(hub.publish("alice", "cat", bob, embedding_bytes()), 403, "forbidden")
    _assert_nothing_published(hub)


def test_unknown_namespace_is_not_found(hub: Hub) -> None:
    admin = hub.user("root", admin=True, scopes=["read", "write", "admin"])
    assert_problem(hub.publish("nobody", "cat", admin, embedding_bytes()), 404, "not_found")


def test_missing_file_is_a_bad_request(hub: Hub, alice: str) -> None:
    response = hub.client.post(
        "/api/v1/embeddings/alice/cat/versions",
        data={"metadata": "{}"},
        files={"x": ("x", b"")},
        headers=auth(alice),
    )
    assert_problem(response, 400, "bad_request")


def test_bad_search_parameters(hub: Hub, alice: str) -> None:
    assert_problem(hub.get("/api/v1/embeddings?sort=popularity"), 400, "bad_request")
    assert_problem(hub.get("/api/v1/embeddings?cursor=%%%not-a-cursor"), 400, "bad_request")
    assert_problem(hub.get("/api/v1/embeddings?cursor=bm9wZQ"), 400, "bad_request")  # "nope"
    assert_problem(hub.get("/api/v1/embeddings?limit=0"), 400, "bad_request")
    assert_problem(hub.get("/api/v1/embeddings?limit=1000"), 400, "bad_request")


def test_bad_lookup_hash_and_format(hub: Hub, alice: str) -> None:
    assert_problem(hub.get("/api/v1/lookup?hash=xyz"), 400, "bad_request")
    hub.published("alice", "cat", alice)
    assert_problem(
        hub.get("/api/v1/embeddings/alice/cat/versions/1/file?format=ckpt"), 400, "bad_request"
    )


def test_unknown_route_is_a_problem(hub: Hub) -> None:
    assert_problem(hub.get("/api/v1/nothing-here"), 404, "not_found")
