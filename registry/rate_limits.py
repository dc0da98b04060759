"""Rate limits, built on Litestar's rate limiting (``RateLimitConfig`` per rule, a fixed window
per identity kept in one of the app's stores, ``RateLimitMiddleware``'s bookkeeping and
headers), checked in one pass per request (:class:`RateLimits`):

- sign-in (token creation, sign-up): per client address, strict;
- failed authentication (an unknown, revoked or expired token): per client address, strict, so
  tokens cannot be guessed at speed;
- authenticated traffic: per token (its hash), generous;
- anonymous traffic: per client address, generous.

A request counts against every rule that applies to it, in that order, until one refuses it.
A refusal is problem+json (``rate_limited``) with ``Retry-After``, which the client's transport
waits out; every answer carries the ``RateLimit-*`` headers of the first rule that counted it.
Counters live in memory per worker process: with ``--workers N`` each limit is N times as wide,
and a reverse proxy in front is where a fleet-wide limit belongs. The client address is the
socket's peer, or ``X-Forwarded-For`` when uvicorn trusts the proxy (``FORWARDED_ALLOW_IPS``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from time import time
from typing import Any

import anyio
from litestar import Request
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.rate_limit import (
    CacheObject,
    DurationUnit,
    RateLimitConfig,
    RateLimitMiddleware,
    get_remote_address,
)
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.types import ASGIApp, Receive, Scope, Send

from client.core.errors import RateLimited
from registry.context import ANONYMOUS, CALLER_STATE_KEY, Caller
from registry.limits import (
    EXEMPT_PATHS,
    LIMITS_STATE_KEY,
    SIGN_IN_ROUTES,
    SIGN_UP_ROUTE,
    RequestLimits,
    respond_problem,
    route_key,
)
from registry.settings import Settings

# (method, route template) of a request, as registry.limits.route_key gives it.
RouteKey = tuple[str, str]


def _token_identity(request: Request) -> str:
    caller: Caller = request.scope["state"][CALLER_STATE_KEY]
    return f"token:{caller.token_hash}"


@dataclass
class LimitRule(RateLimitConfig):
    """A ``RateLimitConfig`` that says which requests it counts (from the caller and the
    route, no ``Request`` needed) and names what it limits in its 429 answer."""

    applies: Callable[[Caller, RouteKey], bool] = field(default=lambda _caller, _key: True)
    what: str = "requests"


class WindowStore(MemoryStore):
    """Litestar's memory store, with a lock that does not yield to the event loop when it is
    free: anyio's default lock yields on every acquire, and the store takes it twice per rule
    per request (most of the limits' cost in a read's profile, issue 12)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = anyio.Lock(fast_acquire=True)


class RuleWindow(RateLimitMiddleware):
    """Litestar's fixed-window bookkeeping for one rule (its keys, stored history and
    ``RateLimit-*`` headers); the ASGI pass over all rules is :class:`RateLimits`'s."""

    config: LimitRule  # type: ignore[assignment]
    # Windows of callers never seen again stay in the memory store until swept.
    SWEEP_EVERY = 10_000
    checks = 0
    _store: Store | None = None

    def store(self, app: Any) -> Store:
        """The app's store of this rule's name: a :class:`WindowStore` unless the app was
        given one of that name (e.g. Redis, for limits shared by several processes)."""
        if self._store is None:
            with suppress(ValueError):  # the name is taken: the app's own, or another route's
                app.stores.register(self.config.store, WindowStore())
            self._store = self.config.get_store_from_app(app)
        return self._store

    async def count(self, request: Request, app: Any) -> tuple[CacheObject, bool]:
        """(this caller's window, whether it was already full); a request that fits is
        counted. The caller holds :class:`RateLimits`'s lock."""
        store = self.store(app)
        self.checks += 1
        if self.checks % self.SWEEP_EVERY == 0 and hasattr(store, "delete_expired"):
            await store.delete_expired()
        key = self.cache_key_from_request(request)
        window = await self.retrieve_cached_history(key, store)
        full = len(window.history) >= self.max_requests
        if not full:
            await self.set_cached_history(key=key, cache_object=window, store=store)
        return window, full


class RateLimits:
    """Every rule in one middleware pass: one ``Request``, one lock, and the store touched only
    for the rules that apply (four Litestar middlewares cost each request four of each and
    ~5% of a read's CPU, issue 12). Answers problem+json through ``send`` instead of raising
    (a raise would skip the ``Connection: close`` and request-id wrappers)."""

    def __init__(self, app: ASGIApp, rules: list[LimitRule]) -> None:
        self.app = app
        self.windows = [RuleWindow(app, rule) for rule in rules]
        self._lock = anyio.Lock(fast_acquire=True)  # free: no trip through the event loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        caller, route = _caller_and_route(scope)
        applicable = [w for w in self.windows if w.config.applies(caller, route)]
        if not applicable:
            await self.app(scope, receive, send)
            return
        app = scope["litestar_app"]
        request: Request[Any, Any, Any] = app.request_class(scope)
        counted: list[tuple[RuleWindow, CacheObject]] = []
        async with self._lock:
            for rule_window in applicable:
                window, full = await rule_window.count(request, app)
                if full:
                    await self._refuse(scope, receive, send, rule_window, window, counted)
                    return
                counted.append((rule_window, window))
        first, first_window = counted[0]
        await self.app(scope, receive, first.create_send_wrapper(send, first_window))

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        refusing: RuleWindow,
        window: CacheObject,
        counted: list[tuple[RuleWindow, CacheObject]],
    ) -> None:
        retry_after = max(1, window.reset - int(time()))
        reporting, reported = counted[0] if counted else (refusing, window)
        headers = {**reporting.create_response_headers(reported), "Retry-After": str(retry_after)}
        exc = RateLimited(
            f"too many {refusing.config.what} (at most {refusing.max_requests} per "
            f"{refusing.unit}); retry in {retry_after} s"
        )
        await respond_problem(scope, receive, send, exc, headers)


def _caller_and_route(scope: Scope) -> tuple[Caller, RouteKey]:
    """What ``request_guard`` (outside this middleware) resolved, or worked out here."""
    state = scope.setdefault("state", {})
    limits: RequestLimits | None = state.get(LIMITS_STATE_KEY)
    if limits is not None:
        return limits.caller, limits.key
    return state.setdefault(CALLER_STATE_KEY, ANONYMOUS), route_key(scope)


def _is_sign_in(caller: Caller, route: RouteKey) -> bool:
    return route in SIGN_IN_ROUTES or (route == SIGN_UP_ROUTE and caller.principal is None)


def _rule(
    name: str,
    unit: DurationUnit,
    count: int,
    what: str,
    applies: Callable[[Caller, RouteKey], bool],
    identify: Callable[[Request], str],
) -> LimitRule | None:
    if count <= 0:
        return None
    return LimitRule(
        rate_limit=(unit, count),
        identifier_for_request=identify,
        store=f"rate_limit_{name}",  # one store per rule: keys name the class, not the rule
        applies=applies,
        what=what,
    )


def rate_limit_rules(settings: Settings) -> list[LimitRule]:
    """The rules ``settings`` turn on, in the order they are checked."""
    rules = [
        _rule(
            "sign_in",
            "minute",
            settings.rate_limit_signin_per_minute,
            "sign-in and token requests from this address",
            _is_sign_in,
            get_remote_address,
        ),
        _rule(
            "failed_auth",
            "minute",
            settings.rate_limit_failed_auth_per_minute,
            "requests with an invalid token from this address",
            lambda caller, _route: caller.failed_auth,
            get_remote_address,
        ),
        _rule(
            "token",
            "second",
            settings.rate_limit_token_per_second,
            "requests with this token",
            lambda caller, _route: caller.principal is not None,
            _token_identity,
        ),
        _rule(
            "anonymous",
            "second",
            settings.rate_limit_anonymous_per_second,
            "requests without a token from this address",
            lambda caller, _route: caller.token_hash is None,
            get_remote_address,
        ),
    ]
    return [rule for rule in rules if rule is not None]


def rate_limit_middleware(settings: Settings) -> list[DefineMiddleware]:
    """The one rate-limit middleware, or none when ``settings`` turn every rule off."""
    rules = rate_limit_rules(settings)
    return [DefineMiddleware(RateLimits, rules=rules)] if rules else []
