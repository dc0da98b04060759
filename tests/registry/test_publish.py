"""Publishing: numbered versions, idempotent republish, atomic numbering under concurrency,
metadata inferred from the file or given by the caller."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

from sqlmodel import select

from registry.accounts.services import principal_for_token
from registry.db import session_scope
from registry.embeddings.models import EmbeddingVersion
from registry.embeddings.publish import PublishMetadata, publish_version
from tests.registry.helpers import Hub, assert_problem, embedding_bytes, random_vectors


def test_publish_numbers_versions_and_republish_is_idempotent(hub: Hub) -> None:
    token = hub.user("alice")
    vectors = random_vectors(token="<cat>")
    from client.core.canonical import canonical_bytes

    data = canonical_bytes(vectors)
    first = hub.publish("alice", "cat", token, data)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["number"] == 1 and body["created"] is True
    assert body["digest"] == vectors.digest  # the digest of the vectors, not of the upload
    assert body["upload_sha256"] == hashlib.sha256(data).hexdigest()
    assert body["family"] == "sd1" and body["vectors"] == 1 and body["dtype"] == "F32"
    assert hub.store.exists(body["digest"])

    again = hub.publish("alice", "cat", token, data)
    assert again.status_code == 200, again.text
    assert again.json()["number"] == 1 and again.json()["created"] is False
    assert again.json()["digest"] == body["digest"]

    second = hub.publish("alice", "cat", token, embedding_bytes())
    assert second.status_code == 201 and second.json()["number"] == 2

    info = hub.get("/api/v1/embeddings/alice/cat").json()
    assert [v["number"] for v in info["versions"]] == [1, 2]
    assert info["latest"] == 2


def test_same_vectors_under_another_name_are_a_separate_embedding(hub: Hub) -> None:
    token = hub.user("alice")
    data = embedding_bytes(seed=7)
    a = hub.published("alice", "one", token, data)
    b = hub.publish("alice", "two", token, data)
    assert b.status_code == 201 and b.json()["number"] == 1
    assert b.json()["digest"] == a["digest"]


def test_fifty_concurrent_publishes_get_versions_1_to_50(hub: Hub) -> None:
    token = hub.user("alice")
    with session_scope(hub.engine) as session:
        principal = principal_for_token(session, token)
    blobs = [embedding_bytes() for _ in range(50)]

    def publish(data: bytes) -> int:
        result = publish_version(
            hub.engine,
            hub.store,
            principal,
            "alice",
            "race",
            data=data,
            meta=PublishMetadata(),
            max_bytes=hub.settings.max_upload_bytes,
        )
        assert result.created
        return result.version.number

    with ThreadPoolExecutor(max_workers=10) as pool:
        numbers = list(pool.map(publish, blobs))

    assert sorted(numbers) == list(range(1, 51))
    with session_scope(hub.engine) as session:
        rows = session.exec(select(EmbeddingVersion.number, EmbeddingVersion.digest)).all()
    assert sorted(n for n, _ in rows) == list(range(1, 51))
    assert len({d for _, d in rows}) == 50
    info = hub.get("/api/v1/embeddings/alice/race").json()
    assert info["latest"] == 50 and len(info["versions"]) == 50


def test_metadata_is_inferred_from_the_file(hub: Hub) -> None:
    token = hub.user("alice")
    body = hub.published("alice", "cat", token, embedding_bytes("sdxl", 2, token="<cat-tok>"))
    assert body["trigger"] == "<cat-tok>"
    assert body["family"] == "sdxl" and body["vectors"] == 2
    assert body["encoders"] == {"clip_l": [2, 768], "clip_g": [2, 1280]}
    info = hub.get("/api/v1/embeddings/alice/cat").json()
    assert info["trigger"] == "<cat-tok>" and info["family"] == "sdxl"
    assert info["visibility"] == "public" and info["type"] is None and info["tags"] == []


def test_metadata_given_by_the_caller_overrides(hub: Hub) -> None:
    token = hub.user("alice")
    meta = {
        "trigger": "<meow>",
        "tags": ["anime", "cats"],
        "type": "style",
        "description": "A cat style",
        "license": "cc-by-4.0",
        "notes": "first cut",
        "base_model": "stabilityai/stable-diffusion-2-1",
        "training": {"steps": 500},
    }
    body = hub.published("alice", "cat", token, embedding_bytes("sd2", token="<x>"), meta)
    assert body["trigger"] == "<meow>" and body["notes"] == "first cut"
    assert body["base_model"] == "stabilityai/stable-diffusion-2-1"
    assert body["training"] == {"steps": 500} and body["family"] == "sd2"
    info = hub.get("/api/v1/embeddings/alice/cat").json()
    assert info["trigger"] == "<meow>" and info["tags"] == ["anime", "cats"]
    assert info["type"] == "style" and info["description"] == "A cat style"
    assert info["license"] == "cc-by-4.0"


def test_base_model_of_another_family_is_refused(hub: Hub) -> None:
    token = hub.user("alice")
    response = hub.publish(
        "alice",
        "cat",
        token,
        embedding_bytes("sd1"),
        {"base_model": "stabilityai/stable-diffusion-xl-base-1.0"},
    )
    body = assert_problem(response, 422, "incompatible_embedding")
    assert "sdxl" in body["detail"].lower() or "xl" in body["detail"].lower()
    # nothing was created
    assert hub.get("/api/v1/embeddings/alice/cat").status_code == 404


def test_unknown_base_model_is_accepted_as_a_fine_tune(hub: Hub) -> None:
    token = hub.user("alice")
    body = hub.published(
        "alice", "cat", token, embedding_bytes("sd1"), {"base_model": "someone/my-sd15-finetune"}
    )
    assert body["base_model"] == "someone/my-sd15-finetune"


def test_bad_metadata_is_refused(hub: Hub) -> None:
    token = hub.user("alice")
    assert_problem(
        hub.publish("alice", "cat", token, embedding_bytes(), {"type": "vibe"}), 400, "bad_request"
    )
    assert_problem(
        hub.publish("alice", "cat", token, embedding_bytes(), {"visibility": "secret"}),
        400,
        "bad_request",
    )
    assert_problem(
        hub.publish("alice", "cat", token, embedding_bytes(), {"tags": ["Bad Tag"]}),
        422,
        "bad_name",
    )
    response = hub.client.post(
        "/api/v1/embeddings/alice/cat/versions",
        files={"file": ("e.safetensors", embedding_bytes())},
        data={"metadata": "{not json"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert_problem(response, 400, "bad_request")


def test_fifty_concurrent_http_publishes_get_versions_1_to_50(hub: Hub) -> None:
    """The same race over real HTTP: uvicorn in a thread, 50 clients at once."""
    import threading

    import httpx
    import uvicorn

    from tests.services import free_port, wait_until

    token = hub.user("alice")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(hub.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=20, what="uvicorn")
        url = f"http://127.0.0.1:{port}/api/v1/embeddings/alice/race/versions"

        def publish(data: bytes) -> int:
            response = httpx.post(
                url,
                files={"file": ("e.safetensors", data)},
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
            assert response.status_code == 201, response.text
            return int(response.json()["number"])

        with ThreadPoolExecutor(max_workers=16) as pool:
            numbers = list(pool.map(publish, [embedding_bytes() for _ in range(50)]))
    finally:
        server.should_exit = True
        thread.join(timeout=15)
    assert sorted(numbers) == list(range(1, 51))
    assert hub.get("/api/v1/embeddings/alice/race").json()["latest"] == 50
