"""One live registry (uvicorn on a free loopback port, SQLite + local blobs) and one headless
Chromium (Debian's ``chromium`` driven by Playwright) for the whole session.

In CI (``CI=true``) a missing browser is a failure, not a skip: these tests must run there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest

from client.core.canonical import canonical_bytes
from client.core.embedding import Embedding as Vectors
from registry.accounts import services as accounts
from registry.accounts.models import Scope
from registry.app import create_app
from registry.db import session_scope
from registry.migrations import upgrade
from registry.settings import Settings
from tests.hub.conftest import _Server

PASSWORD = "correct horse battery staple"


@dataclass
class Site:
    url: str
    app: Any
    tokens: dict[str, str]

    def publish(self, ns: str, name: str, vectors: np.ndarray, meta: dict[str, Any]) -> None:
        tensors = {"emb_params": np.asarray(vectors, np.float32).reshape(-1, 768)}
        data = canonical_bytes(Vectors.from_tensors(tensors, token=None, source_format="test"))
        r = httpx.post(
            f"{self.url}/api/v1/embeddings/{ns}/{name}/versions",
            files={"file": ("e.safetensors", data), "metadata": (None, json.dumps(meta))},
            headers={"Authorization": f"Bearer {self.tokens[ns]}"},
        )
        assert r.status_code == 201, r.text


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("web-registry")
    settings = Settings(
        data_dir=tmp, database_url=f"sqlite:///{tmp / 'registry.db'}", log_level="WARNING"
    )
    upgrade(settings.resolved_database_url)
    app = create_app(settings)
    tokens = {}
    with session_scope(app.state.registry.engine) as session:
        for name in ("alice", "oscar"):
            user = accounts.create_user(session, name, password=PASSWORD)
            tokens[name], _ = accounts.create_token(session, user, "tests")
        # A training worker's token: tests drive a job's progress by the worker protocol.
        worker = accounts.create_user(session, "gpu-worker")
        tokens["worker"], _ = accounts.create_token(session, worker, "w", [Scope.WORKER.value])
    server = _Server(app)
    site = Site(f"http://127.0.0.1:{server.port}", app, tokens)
    _seed(site)
    yield site
    server.stop()


def _seed(site: Site) -> None:
    rng = np.random.default_rng(7)
    base = rng.standard_normal(768)
    losses = [[i * 10, 0.5 * np.exp(-i / 15) + 0.05] for i in range(40)]
    site.publish(
        "alice",
        "bad-hands",
        base,
        {
            "description": "Fixes hands. A negative embedding for SD 1.5.",
            "type": "negative",
            "tags": ["hands", "negative"],
            "trigger": "<bad-hands>",
            "training": {"steps": 400, "losses": losses, "final_loss": losses[-1][1]},
        },
    )
    site.publish("alice", "good-hands", base + 0.3 * rng.standard_normal(768), {"type": "style"})
    site.publish(
        "alice", "watercolor", rng.standard_normal(768), {"type": "style", "tags": ["paint"]}
    )
    site.publish(
        "alice",
        "my-secret",
        rng.standard_normal(768),
        {"visibility": "private", "description": "only alice sees this"},
    )
    site.publish(
        "alice",
        "sneaky",
        rng.standard_normal(768),
        {"description": '<script>alert("xss")</script><img src=x onerror=alert(1)>'},
    )


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    context = browser.new_context(base_url=site.url, accept_downloads=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs  # type: ignore[attr-defined]
    yield page
    context.close()
