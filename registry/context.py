"""What every request handler needs, built once per app by ``create_app`` (no module globals)."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Request
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Engine

from registry.accounts.access import Principal
from registry.accounts.services import principal_for_token
from registry.db import session_scope
from registry.settings import Settings
from registry.storage.base import BlobStore


@dataclass
class Registry:
    settings: Settings
    engine: Engine
    store: BlobStore
    metrics: CollectorRegistry


def provide_registry(request: Request) -> Registry:
    return request.app.state.registry


def provide_principal(request: Request) -> Principal | None:
    """The caller from ``Authorization: Bearer <token>``; None when anonymous. An invalid,
    revoked or expired token is anonymous too, so the route's own rule answers (401/404)."""
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    registry: Registry = request.app.state.registry
    with session_scope(registry.engine) as session:
        return principal_for_token(session, secret.strip())
