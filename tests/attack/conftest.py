"""Attack fixtures: the live registry of ``tests/hub`` (uvicorn on loopback, both backends) and
the in-process ``make_hub`` of ``tests/registry`` (both backends), imported rather than copied;
plus the world the hostile requests refer to (a victim's private and public embeddings, an
admin, a worker, a job)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from registry.accounts import services as accounts
from registry.accounts.models import Scope
from registry.db import session_scope
from tests.attack.hostile_corpus import Corpus, shared_corpus
from tests.attack.hostile_publish import good_file
from tests.attack.support import World
from tests.hub.conftest import LiveRegistry, live  # noqa: F401 - fixture
from tests.registry.conftest import backend, make_hub  # noqa: F401 - fixtures
from tests.training.conftest import job_params, png


@pytest.fixture(scope="session")
def corpus() -> Corpus:
    return shared_corpus()


@pytest.fixture(scope="session")
def marker_dir(corpus: Corpus) -> Path:
    """Where a pickle that ran would leave ``pwned-*``: the tests assert it stays empty."""
    return corpus.marker_dir


def _post(url: str, path: str, token: str, **kwargs: object) -> httpx.Response:
    response = httpx.post(
        f"{url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=60, **kwargs
    )
    assert response.status_code in (200, 201), response.text
    return response


@pytest.fixture(scope="session")
def world(live: LiveRegistry) -> Iterator[World]:  # noqa: F811 - the imported fixture
    """bob's private ``bob/secret`` (the victim digest) and public ``bob/open`` (whose original
    file hash a squatter claims), alice's ``alice/base`` (v1, tag ``stable``) and a training
    job of hers, an admin and a registered worker."""
    tokens = dict(live.tokens)
    with session_scope(live.app.state.registry.engine) as session:
        root = accounts.create_user(session, "root", is_admin=True)
        tokens["admin"], _ = accounts.create_token(
            session, root, "admin", [Scope.READ.value, Scope.WRITE.value, Scope.ADMIN.value]
        )
        worker = accounts.create_user(session, "trainer")
        tokens["worker"], _ = accounts.create_token(session, worker, "w", [Scope.WORKER.value])
    url = live.url
    secret = good_file(9001)
    meta = json.dumps({"visibility": "private"})
    victim = _post(
        url,
        "/api/v1/embeddings/bob/secret/versions",
        tokens["bob"],
        files={"file": ("s.safetensors", secret), "metadata": (None, meta)},
    ).json()
    original = good_file(9002)
    _post(
        url, "/api/v1/embeddings/bob/open/versions", tokens["bob"], files={"file": ("o", original)}
    )
    _post(
        url,
        "/api/v1/embeddings/alice/base/versions",
        tokens["alice"],
        files={"file": ("b", good_file(9003))},
    )
    httpx.put(
        f"{url}/api/v1/embeddings/alice/base/tags/stable",
        json={"version": 1},
        headers={"Authorization": f"Bearer {tokens['alice']}"},
    ).raise_for_status()
    files = [("params", (None, json.dumps(job_params(target="alice/toy"))))]
    files += [("images", (f"{i}.png", png(seed=i))) for i in range(2)]
    job = _post(url, "/api/v1/training-jobs", tokens["alice"], files=files).json()
    worker_id = _post(
        url, "/api/v1/workers/register", tokens["worker"], json={"families": ["sd2"]}
    ).json()["id"]
    world = World(
        url,
        live.app,
        tokens,
        values={
            "$VICTIM_DIGEST": victim["digest"],
            "$VICTIM_SHA256": hashlib.sha256(original).hexdigest(),
            "$JOB": job["id"],
            "$WORKER": worker_id,
        },
        victim_bytes=secret,
    )
    yield world
    world.http.close()  # an open keep-alive connection would hold up the server's shutdown
