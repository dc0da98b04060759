"""Training fixtures: a registry per test (SQLite + local blobs, or PostgreSQL + local blobs for
the claim races), in-process for the protocol tests and served over loopback by uvicorn for the
end-to-end tests that run real ``lexicon-trainer`` subprocesses; small images; worker tokens."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from litestar.testing import TestClient

from registry.accounts import services as accounts
from registry.accounts.models import Scope
from registry.app import create_app
from registry.db import session_scope
from registry.migrations import upgrade
from registry.settings import Settings
from tests.registry.helpers import Hub, auth
from tests.services import free_port, wait_until


def png(h: int = 32, w: int = 32, seed: int = 0, fmt: str = "PNG") -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, fmt)
    return buf.getvalue()


def job_params(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "target": "alice/toy",
        "trigger": "<toy>",
        "initializer": "cat",
        "family": "sd1",
        "steps": 30,
        "resolution": 32,
        "learning_rate": 5e-2,
        "loss_every": 5,
        "early_stop": False,
    }
    base.update(kw)
    return base


class TrainingHub(Hub):
    """A :class:`Hub` with training helpers."""

    def worker_token(self, name: str = "worker-1") -> str:
        with session_scope(self.engine) as session:
            user = accounts.create_user(session, name)
            secret, _ = accounts.create_token(session, user, "worker", [Scope.WORKER.value])
        return secret

    def submit(
        self, token: str | None, params: dict[str, Any], images: list[tuple[str, bytes]] | None
    ) -> httpx.Response:
        # params as a part of its own, so the body is multipart even with no images
        files = [("params", (None, json.dumps(params), "application/json"))]
        files += [("images", (n, d, "application/octet-stream")) for n, d in images or []]
        return self.client.post("/api/v1/training-jobs", files=files, headers=auth(token))

    def submitted(self, token: str, **kw: Any) -> dict[str, Any]:
        images = kw.pop("images", None) or [("a.png", png(seed=1)), ("b.png", png(seed=2))]
        r = self.submit(token, job_params(**kw), images)
        assert r.status_code == 201, r.text
        return r.json()

    def register(self, token: str, families: list[str], base_models: list[str] | None = None):
        r = self.client.post(
            "/api/v1/workers/register",
            json={"name": "w", "families": families, "base_models": base_models or []},
            headers=auth(token),
        )
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def claim(self, token: str, worker_id: str) -> httpx.Response:
        return self.client.post(f"/api/v1/workers/{worker_id}/claim", headers=auth(token))


def make_settings(tmp: Path, url: str | None = None, **overrides: Any) -> Settings:
    settings = Settings(
        data_dir=tmp / "data",
        database_url=url or f"sqlite:///{tmp / 'registry.db'}",
        storage="local",
        **overrides,
    )
    upgrade(settings.resolved_database_url)
    return settings


@pytest.fixture
def make_training_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Any]]:
    clients: list[TestClient] = []

    def _make(url: str | None = None, **overrides: Any) -> TrainingHub:
        settings = make_settings(tmp_path_factory.mktemp("hub"), url, **overrides)
        app = create_app(settings)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return TrainingHub("sqlite-local" if url is None else "postgres", settings, app, client)

    yield _make
    for client in reversed(clients):
        client.__exit__(None, None, None)


@pytest.fixture
def thub(make_training_hub) -> TrainingHub:  # type: ignore[no-untyped-def]
    return make_training_hub()


class LiveRegistry:
    """The registry served by uvicorn on a loopback port, in a thread of the test process."""

    def __init__(self, settings: Settings) -> None:
        import uvicorn

        self.settings = settings
        self.app = create_app(settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(self._up, timeout=20, what="the registry")

    def _up(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def engine(self):  # type: ignore[no-untyped-def]
        return self.app.state.registry.engine

    def user(self, name: str, password: str | None = None) -> str:
        with session_scope(self.engine) as session:
            user = accounts.create_user(session, name, password=password)
            secret, _ = accounts.create_token(session, user, "test")
        return secret

    def worker_token(self, name: str) -> str:
        with session_scope(self.engine) as session:
            user = accounts.create_user(session, name)
            secret, _ = accounts.create_token(session, user, "worker", [Scope.WORKER.value])
        return secret

    def job(self, token: str, job_id: str) -> dict[str, Any]:
        r = httpx.get(f"{self.url}/api/v1/training-jobs/{job_id}", headers=auth(token))
        r.raise_for_status()
        return r.json()

    def wait_job(
        self, token: str, job_id: str, ready: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(token, job_id)
            if ready(job) or time.monotonic() > deadline:
                return job
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_registry(tmp_path: Path) -> Iterator[LiveRegistry]:
    registry = LiveRegistry(make_settings(tmp_path, training_lease_seconds=4))
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def sd1_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SD1 pipeline saved to disk, for ``lexicon-trainer --base-model``."""
    pytest.importorskip("diffusers")
    from client.testing import save_tiny_pipeline

    return save_tiny_pipeline("sd1", tmp_path_factory.mktemp("models") / "tiny-sd1")
