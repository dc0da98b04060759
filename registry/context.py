"""What every request handler needs, built once per app by ``create_app`` (no module globals),
and who is calling: the principal behind the bearer token, resolved once per request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from anyio.to_thread import run_sync
from litestar import Request
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Engine

from registry.accounts.access import Principal
from registry.accounts.services import principal_for_token
from registry.accounts.tokens import hash_token
from registry.db import read_connection
from registry.settings import Settings
from registry.storage.base import BlobStore

# scope["state"] key under which the resolved caller is kept for the rest of the request.
CALLER_STATE_KEY = "lexicon_caller"


@dataclass
class Registry:
    settings: Settings
    engine: Engine
    store: BlobStore
    metrics: CollectorRegistry

    @property
    def inline_reads(self) -> bool:
        """SQLite reads run on the event loop itself (see :func:`run_read`)."""
        return self.engine.dialect.name == "sqlite"


T = TypeVar("T")


async def run_read(registry: Registry, work: Callable[..., T], *args: Any) -> T:
    """Run a read-only database call. On SQLite it runs inline: a WAL read takes no lock and
    never waits (both read scopes in ``registry.db`` open a deferred ``BEGIN``), and the round
    trip to a worker thread cost more than the query itself (issue 12). Elsewhere (PostgreSQL:
    network I/O, a pool that may be exhausted) it runs in a worker thread so the event loop
    never blocks.
    Never use it for a call that writes: a SQLite write may wait for the lock."""
    if registry.inline_reads:
        return work(*args)
    return await run_sync(work, *args)


@dataclass(frozen=True)
class Caller:
    """The principal (None when anonymous) and, when a token was presented, its hash: the
    identity per-token rate limits count by, never the secret itself."""

    principal: Principal | None
    token_hash: str | None

    @property
    def failed_auth(self) -> bool:
        """A token was presented but is unknown, revoked or expired."""
        return self.token_hash is not None and self.principal is None


def bearer_secret(headers: Any) -> str | None:
    """The secret of ``Authorization: Bearer <secret>``; None when absent or another scheme."""
    header = headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return secret.strip()


ANONYMOUS = Caller(None, None)


def _resolve(registry: Registry, secret: str) -> Caller:
    with read_connection(registry.engine) as conn:  # no ORM Session: ~17% of a token read
        return Caller(principal_for_token(conn, secret), hash_token(secret))


async def caller_for(request: Request) -> Caller:
    """Resolve the caller once per request (the database lookup runs in a worker thread); the
    request limits need it before the body is read, the route's ``principal`` after."""
    state = request.scope.setdefault("state", {})
    caller = state.get(CALLER_STATE_KEY)
    if caller is None:
        secret = bearer_secret(request.headers)
        if secret is None:
            caller = ANONYMOUS  # no database, no worker thread
        else:
            caller = await run_read(
                request.app.state.registry, _resolve, request.app.state.registry, secret
            )
        state[CALLER_STATE_KEY] = caller
    return caller


def provide_registry(request: Request) -> Registry:
    return request.app.state.registry


async def provide_principal(request: Request, registry: Registry) -> Principal | None:
    """The caller from ``Authorization: Bearer <token>``; None when anonymous. An invalid,
    revoked or expired token is anonymous too, so the route's own rule answers (401/404).
    Async: an anonymous request, or one whose token ``request_guard`` already resolved, costs
    no trip to a worker thread. It takes ``registry`` only to be resolved after it: Litestar
    resolves sibling dependencies concurrently, in a task group per request (~8% of a read's
    CPU, issue 12), and one after the other when one depends on the other."""
    del registry
    return (await caller_for(request)).principal
