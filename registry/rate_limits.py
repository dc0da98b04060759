"""Rate limits, built on Litestar's ``RateLimitMiddleware`` (a fixed window per identity, kept in
one of the app's stores), one limiter per rule:

- sign-in (token creation, sign-up): per client address, strict;
- failed authentication (an unknown, revoked or expired token): per client address, strict, so
  tokens cannot be guessed at speed;
- authenticated traffic: per token (its hash), generous;
- anonymous traffic: per client address, generous.

A refusal is problem+json (``rate_limited``) with ``Retry-After``, which the client's transport
waits out. Counters live in memory per worker process: with ``--workers N`` each limit is N
times as wide, and a reverse proxy in front is where a fleet-wide limit belongs. The client
address is the socket's peer, or ``X-Forwarded-For`` when uvicorn trusts the proxy
(``FORWARDED_ALLOW_IPS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from time import time
from typing import Any

from litestar import Request
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.rate_limit import (
    DurationUnit,
    RateLimitConfig,
    RateLimitMiddleware,
    get_remote_address,
)
from litestar.types import Receive, Scope, Send

from client.core.errors import RateLimited
from registry.context import CALLER_STATE_KEY, Caller
from registry.limits import (
    EXEMPT_PATHS,
    SIGN_IN_ROUTES,
    SIGN_UP_ROUTE,
    respond_problem,
    route_key,
)
from registry.settings import Settings

_EXEMPT = [f"^{path}$" for path in sorted(EXEMPT_PATHS)]


def _caller(request: Request) -> Caller:
    return request.scope.get("state", {}).get(CALLER_STATE_KEY) or Caller(None, None)


def _is_sign_in(request: Request) -> bool:
    key = route_key(request.scope)
    return key in SIGN_IN_ROUTES or (key == SIGN_UP_ROUTE and _caller(request).principal is None)


def _token_identity(request: Request) -> str:
    return f"token:{_caller(request).token_hash}"


class ProblemRateLimitMiddleware(RateLimitMiddleware):
    """Litestar's limiter, answering problem+json with ``Retry-After`` through ``send`` instead
    of raising (a raise would skip the ``Connection: close`` and request-id wrappers)."""

    config: LimitRule  # type: ignore[assignment]
    # Windows of callers never seen again stay in the memory store until swept.
    SWEEP_EVERY = 10_000
    checks = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = scope["litestar_app"]
        request: Request[Any, Any, Any] = app.request_class(scope)
        if await self.should_check_request(request=request):
            store = self.config.get_store_from_app(app)
            key = self.cache_key_from_request(request)
            async with self._lock:
                self.checks += 1
                if self.checks % self.SWEEP_EVERY == 0 and hasattr(store, "delete_expired"):
                    await store.delete_expired()
                window = await self.retrieve_cached_history(key, store)
                limited = len(window.history) >= self.max_requests
                if not limited:
                    await self.set_cached_history(key=key, cache_object=window, store=store)
            if limited:
                retry_after = max(1, window.reset - int(time()))
                headers = {**self.create_response_headers(window), "Retry-After": str(retry_after)}
                exc = RateLimited(
                    f"too many {self.config.what} (at most {self.max_requests} per "
                    f"{self.unit}); retry in {retry_after} s"
                )
                await respond_problem(scope, receive, send, exc, headers)
                return
            send = self.create_send_wrapper(send=send, cache_object=window)
        await self.app(scope, receive, send)


@dataclass
class LimitRule(RateLimitConfig):
    """A ``RateLimitConfig`` that names what it limits in its 429 answer."""

    what: str = "requests"
    middleware_class: type[RateLimitMiddleware] = ProblemRateLimitMiddleware


def _rule(
    name: str, unit: DurationUnit, count: int, what: str, check: Any, identify: Any
) -> DefineMiddleware | None:
    if count <= 0:
        return None

    async def check_inline(request: Request) -> bool:
        """Async, so Litestar calls it on the loop (a sync check costs a worker thread
        round trip per rule per request, issue 12)."""
        return bool(check(request))

    rule = LimitRule(
        rate_limit=(unit, count),
        exclude=_EXEMPT,
        check_throttle_handler=check_inline,
        identifier_for_request=identify,
        store=f"rate_limit_{name}",  # one store per rule: keys name the class, not the rule
        what=what,
    )
    return rule.middleware


def rate_limit_middleware(settings: Settings) -> list[DefineMiddleware]:
    """The limiters ``settings`` turn on, in the order they are checked."""
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
            lambda request: _caller(request).failed_auth,
            get_remote_address,
        ),
        _rule(
            "token",
            "second",
            settings.rate_limit_token_per_second,
            "requests with this token",
            lambda request: _caller(request).principal is not None,
            _token_identity,
        ),
        _rule(
            "anonymous",
            "second",
            settings.rate_limit_anonymous_per_second,
            "requests without a token from this address",
            lambda request: _caller(request).token_hash is None,
            get_remote_address,
        ),
    ]
    return [rule for rule in rules if rule is not None]
