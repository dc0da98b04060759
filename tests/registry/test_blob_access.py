"""Who may read a blob by its digest (issue 8, defects 1 and 3): the preview route serves only
previews a training job's ``complete`` recorded, never digests a user wrote into ``training``
metadata; ``training`` is validated against a schema on publish; and every route that serves
bytes by digest answers outsiders 404 (never 403, never the bytes)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlmodel import select

from registry.db import session_scope
from registry.embeddings.models import Embedding, EmbeddingVersion
from tests.registry.helpers import Hub, assert_problem, auth, embedding_bytes
from tests.training.conftest import job_params, png


def _set_training(hub: Hub, ns: str, name: str, training: Any) -> None:
    """Store ``training`` on the version as it is, as rows written before schema validation (or
    by a bug) may hold it."""
    with session_scope(hub.engine) as session:
        version = session.exec(
            select(EmbeddingVersion)
            .join(Embedding, EmbeddingVersion.embedding_id == Embedding.id)
            .where(Embedding.namespace == ns, Embedding.name == name)
        ).one()
        version.training = training
        session.add(version)


def _bobs_private(hub: Hub) -> tuple[str, bytes, str]:
    bob = hub.user("bob")
    secret = embedding_bytes()
    digest = hub.published("bob", "secret", bob, secret, {"visibility": "private"})["digest"]
    return bob, secret, digest


def test_publish_refuses_previews_in_training_metadata(hub: Hub) -> None:
    _, _, digest = _bobs_private(hub)
    mallory = hub.user("mallory")
    forged = {"training": {"steps": 10, "previews": [{"digest": digest}]}}
    r = hub.publish("mallory", "bait", mallory, embedding_bytes(), forged)
    body = assert_problem(r, 400, "bad_request")
    assert "previews" in body["detail"]
    assert hub.get("/api/v1/embeddings/mallory/bait").status_code == 404  # nothing published


def test_preview_route_never_serves_a_digest_the_user_wrote(hub: Hub) -> None:
    """A row already holding user-written previews (stored before validation) serves nothing:
    the route trusts only previews of a version a training job produced."""
    _, secret, digest = _bobs_private(hub)
    mallory = hub.user("mallory")
    hub.published("mallory", "bait", mallory, embedding_bytes())
    _set_training(hub, "mallory", "bait", {"job": "tj_forged", "previews": [{"digest": digest}]})
    for who in (None, mallory):
        r = hub.get(f"/api/v1/embeddings/mallory/bait/versions/1/previews/{digest}", who)
        assert_problem(r, 404, "not_found")
        assert secret not in r.content


@pytest.mark.parametrize(
    "training",
    [
        {"previews": ["x", 1]},
        {"steps": "many"},
        {"steps": -1},
        {"steps": True},
        {"final_loss": float("nan")},
        {"losses": [0.5] * 100_000},
        {"job": "tj_0123456789abcdef0123"},
        {"a_key_nobody_defined": 1},
        ["not", "an", "object"],
    ],
)
def test_malformed_training_metadata_is_refused(hub: Hub, training: Any) -> None:
    token = hub.user("alice")
    r = hub.publish("alice", "cat", token, embedding_bytes(), {"training": training})
    assert_problem(r, 400, "bad_request")


def test_described_training_is_kept_as_given(hub: Hub) -> None:
    token = hub.user("alice")
    training = {"steps": 3000, "learning_rate": 0.005, "final_loss": 0.12, "optimizer": "adamw"}
    body = hub.published("alice", "cat", token, embedding_bytes(), {"training": training})
    assert body["training"] == training


@pytest.mark.parametrize("training", [{"previews": ["x", 1]}, ["x"], "text", {"previews": 7}])
def test_preview_route_on_malformed_stored_training_is_404(hub: Hub, training: Any) -> None:
    token = hub.user("alice")
    hub.published("alice", "cat", token, embedding_bytes())
    _set_training(hub, "alice", "cat", training)
    digest = "sha256:" + "ab" * 32
    r = hub.get(f"/api/v1/embeddings/alice/cat/versions/1/previews/{digest}", token)
    assert_problem(r, 404, "not_found")


def _bobs_job(hub: Hub, bob: str) -> tuple[str, str]:
    files = [("params", (None, json.dumps(job_params(target="bob/toy")), "application/json"))]
    files.append(("images", ("a.png", png(seed=7), "image/png")))
    r = hub.client.post("/api/v1/training-jobs", files=files, headers=auth(bob))
    assert r.status_code == 201, r.text
    job = r.json()
    return job["id"], job["images"][0]["digest"]


def test_every_route_serving_bytes_by_digest_answers_outsiders_404(hub: Hub) -> None:
    bob, secret, digest = _bobs_private(hub)
    job_id, image = _bobs_job(hub, bob)
    alice = hub.user("alice")
    worker = hub.user("worker-9", scopes=["worker"])
    for who in (None, alice, worker):
        paths = [
            "/api/v1/embeddings/bob/secret/versions/1/file",
            f"/api/v1/embeddings/bob/secret/versions/{digest}/file",
            f"/api/v1/embeddings/bob/secret/versions/1/previews/{digest}",
            f"/api/v1/training-jobs/{job_id}/images/{image}",
            f"/api/v1/training-jobs/{job_id}/checkpoint",
        ]
        for path in paths:
            r = hub.get(path, who, follow_redirects=False)
            assert r.status_code == 404, (path, r.status_code)
            assert secret not in r.content
        head = hub.client.head(f"/api/v1/blobs/{digest}", headers=auth(who))
        assert head.status_code == 404
    by_digest = hub.client.post(
        "/api/v1/embeddings/alice/copy/versions",
        files={"digest": (None, digest)},
        headers=auth(alice),
    )
    assert_problem(by_digest, 404, "not_found")
    # The owner still gets them.
    assert hub.client.head(f"/api/v1/blobs/{digest}", headers=auth(bob)).status_code == 200
    got = hub.get(f"/api/v1/training-jobs/{job_id}/images/{image}", bob)
    assert got.status_code == 200 and got.content == png(seed=7)
