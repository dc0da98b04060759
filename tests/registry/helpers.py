"""Helpers for the registry tests: the :class:`Hub` handle, factories for accounts and random
embeddings, and the problem+json assertion."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
from litestar import Litestar
from litestar.testing import TestClient

from client.core.canonical import canonical_bytes
from client.core.embedding import Embedding as Vectors
from registry.accounts import services as accounts
from registry.db import session_scope
from registry.settings import Settings

BACKENDS = ["sqlite-local", "postgres-s3"]
WIDTHS = {
    "sd1": {"emb_params": 768},
    "sd2": {"emb_params": 1024},
    "sdxl": {"clip_l": 768, "clip_g": 1280},
}


def random_vectors(
    family: str = "sd1", n: int = 1, *, token: str | None = "<x>", seed: int | None = None
) -> Vectors:
    rng = np.random.default_rng(seed if seed is not None else secrets.randbits(64))
    tensors = {k: rng.standard_normal((n, w)).astype(np.float32) for k, w in WIDTHS[family].items()}
    return Vectors.from_tensors(tensors, token=token, source_format="test")


def embedding_bytes(
    family: str = "sd1", n: int = 1, *, token: str | None = "<x>", seed: int | None = None
) -> bytes:
    """Canonical safetensors of random vectors (a new digest on every call unless ``seed``)."""
    return canonical_bytes(random_vectors(family, n, token=token, seed=seed))


def auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """A refusal: the status, the stable code in the body and the header, a detail and a fix."""
    assert response.status_code == status, response.text
    assert response.headers.get("x-error-code") == code, response.headers
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["detail"] and body["fix"], body
    return body


@dataclass
class Hub:
    """A running registry (app + TestClient) on one backend, with factories."""

    backend: str
    settings: Settings
    app: Litestar
    client: TestClient
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def registry(self):  # type: ignore[no-untyped-def]
        return self.app.state.registry

    @property
    def engine(self):  # type: ignore[no-untyped-def]
        return self.registry.engine

    @property
    def store(self):  # type: ignore[no-untyped-def]
        return self.registry.store

    # -- accounts --------------------------------------------------------------------------

    def user(self, name: str, *, admin: bool = False, scopes: list[str] | None = None) -> str:
        """Create a user and return an API token (read + write unless ``scopes``)."""
        with session_scope(self.engine) as session:
            user = accounts.create_user(session, name, is_admin=admin)
            secret, _ = accounts.create_token(session, user, "test", scopes)
        return secret

    def token(
        self, username: str, scopes: list[str] | None = None, expires_in_days: int | None = None
    ) -> str:
        with session_scope(self.engine) as session:
            user = accounts.get_user(session, username)
            secret, _ = accounts.create_token(session, user, "extra", scopes, expires_in_days)
        return secret

    def org(self, name: str, owner: str, members: dict[str, str] | None = None) -> None:
        """Create org ``name`` owned by ``owner``; ``members`` maps username -> role."""
        with session_scope(self.engine) as session:
            org = accounts.create_org(session, name, accounts.get_user(session, owner))
            for username, role in (members or {}).items():
                accounts.set_membership(session, org, accounts.get_user(session, username), role)

    def rows(self, model: type) -> list[Any]:
        from sqlmodel import select

        with session_scope(self.engine) as session:
            return list(session.exec(select(model)).all())

    # -- embeddings ------------------------------------------------------------------------

    def publish(
        self,
        ns: str,
        name: str,
        token: str | None,
        data: bytes | None = None,
        meta: dict[str, Any] | None = None,
        *,
        filename: str = "e.safetensors",
    ) -> httpx.Response:
        files: dict[str, Any] = {
            "file": (
                filename,
                data if data is not None else embedding_bytes(),
                "application/octet-stream",
            )
        }
        form = {"metadata": json.dumps(meta)} if meta is not None else None
        return self.client.post(
            f"/api/v1/embeddings/{ns}/{name}/versions",
            files=files,
            data=form,
            headers=auth(token),
        )

    def published(
        self,
        ns: str,
        name: str,
        token: str | None,
        data: bytes | None = None,
        meta: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        response = self.publish(ns, name, token, data, meta)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, headers=auth(token), **kwargs)
