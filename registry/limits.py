"""Request limits checked before a body is read (issue 8): who is calling, how large the body
may be on this route, and how slowly it may arrive.

Three middlewares, in this order inside ``ops.request_middleware`` (see ``create_app``):

1. :func:`request_guard` resolves the caller once (only when a token is presented), meters the
   body as the route reads it (the route's cap for chunked bodies; a minimum rate past a grace
   time, else 408) and adds ``Connection: close`` to any answer sent before the whole body came
   in, so a refused upload is not read to its end over a kept-alive connection.
2. the rate limits (:mod:`registry.rate_limits`), which count failed authentication too.
3. :func:`body_gate` refuses, before any body byte is read: an upload from a caller without a
   valid token (401), and an announced ``Content-Length`` over the route's cap (413).

What the ASGI layer cannot see (a request head that never completes) is cut by the server
protocol in :mod:`registry.serving`.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from functools import lru_cache

import anyio
from litestar import Request
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from client.core.errors import LexiconError, RequestTimeout, TooLarge, Unauthorized
from client.core.training import MAX_IMAGES, MAX_PREVIEWS
from registry.context import ANONYMOUS, CALLER_STATE_KEY, Caller, caller_for
from registry.problems import problem
from registry.settings import Settings

# Boundaries, part headers and the small JSON fields (metadata, params) of a multipart upload.
MULTIPART_OVERHEAD = 256 * 1024
# The training routes hold each preview to this (registry/training/complete.py).
MAX_PREVIEW_BYTES = 8 * 1024 * 1024
# Operational routes stay cheap: no token lookup, no rate limit, no metering.
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Sign-in: what hands out a token. Rate-limited per client address (registry/rate_limits.py),
# as is sign-up by anyone (LEXICON_OPEN_SIGNUP); an admin creating accounts is not signing up.
SIGN_UP_ROUTE = ("POST", "/api/v1/users")
SIGN_IN_ROUTES = frozenset(
    {
        ("POST", "/api/v1/tokens"),
        ("POST", "/api/v1/sessions"),
        ("POST", "/signin"),  # the web sign-in form (registry/web)
        ("POST", "/tokens"),
    }
)
LIMITS_STATE_KEY = "lexicon_limits"

_TYPED_PARAM = re.compile(r"\{(\w+):[^}]*\}")


def route_key(scope: Scope) -> tuple[str, str]:
    """(method, route template without parameter types or a trailing slash), e.g.
    ``("POST", "/api/v1/embeddings/{namespace}/{name}/versions")``."""
    return _route_key(str(scope.get("method", "GET")), scope.get("path_template") or scope["path"])


@lru_cache(maxsize=1024)  # a few dozen route templates; a path only where no route matched
def _route_key(method: str, template: str) -> tuple[str, str]:
    return method, _TYPED_PARAM.sub(r"{\1}", template).rstrip("/") or "/"


def upload_caps(settings: Settings) -> dict[tuple[str, str], int]:
    """Body caps of the upload routes, from the settings that bound each part; every other
    route takes JSON of at most ``max_json_body_bytes``."""
    return {
        # the embedding file plus, from `hub push`, the original file it was converted from
        ("POST", "/api/v1/embeddings/{namespace}/{name}/versions"): 2 * settings.max_upload_bytes
        + MULTIPART_OVERHEAD,
        ("POST", "/api/v1/training-jobs"): MAX_IMAGES * settings.training_max_image_bytes
        + MULTIPART_OVERHEAD,
        ("PUT", "/api/v1/training-jobs/{job_id}/checkpoint"): settings.training_max_checkpoint_bytes
        + MULTIPART_OVERHEAD,
        ("POST", "/api/v1/training-jobs/{job_id}/complete"): settings.max_upload_bytes
        + MAX_PREVIEWS * MAX_PREVIEW_BYTES
        + MULTIPART_OVERHEAD,
    }


def body_cap(settings: Settings, key: tuple[str, str]) -> int:
    return upload_caps(settings).get(key, settings.max_json_body_bytes)


def largest_body(settings: Settings) -> int:
    return max([settings.max_json_body_bytes, *upload_caps(settings).values()])


@dataclass
class BodyMeter:
    """Counts the body as the route reads it. Past ``grace_s`` the body must average
    ``min_rate`` bytes/s (each wait for the next chunk ends at that deadline): a client cannot
    hold a request open by trickling bytes or by stalling."""

    receive: Receive
    cap: int
    announced: int | None
    expected: bool  # a body was announced (Content-Length > 0 or chunked)
    grace_s: float
    min_rate: int
    started: float = field(default_factory=time.monotonic)
    received: int = 0
    done: bool = False

    def __post_init__(self) -> None:
        self.done = not self.expected

    def deadline(self) -> float:
        if self.min_rate <= 0:
            return math.inf
        return self.started + self.grace_s + self.received / self.min_rate

    async def __call__(self) -> Message:
        if self.done:
            return await self.receive()
        left = self.deadline() - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            with anyio.fail_after(None if math.isinf(left) else left):
                message = await self.receive()
        except TimeoutError:
            raise RequestTimeout(
                f"the request body arrived too slowly ({self.received:,} bytes in "
                f"{time.monotonic() - self.started:.0f} s; after {self.grace_s:g} s it must "
                f"average {self.min_rate:,} bytes/s)"
            ) from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.cap:
                raise TooLarge(_too_large(self.cap))
            if not message.get("more_body", False):
                self.done = True
        return message


def _too_large(cap: int) -> str:
    return (
        f"the request body is over this route's limit of {cap:,} bytes "
        "(uploads: LEXICON_MAX_UPLOAD_BYTES and the training limits; JSON: "
        "LEXICON_MAX_JSON_BODY_BYTES)"
    )


def _request_head(scope: Scope) -> tuple[int | None, bool, bool]:
    """(Content-Length or None, chunked, an Authorization header present), in one pass over
    the raw headers: no ``Request`` or header mapping is built for a request without a token."""
    length, chunked, authorization = None, False, False
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"authorization":
            authorization = True
    return length, chunked, authorization


async def respond_problem(
    scope: Scope,
    receive: Receive,
    send: Send,
    exc: LexiconError,
    headers: dict[str, str] | None = None,
) -> None:
    """Answer ``exc`` as problem+json from a middleware, through ``send`` (so the wrappers of
    the middlewares outside this one, like the request id and ``Connection: close``, apply)."""
    request: Request = Request(scope)
    response = problem(exc.code, str(exc), request)
    response.headers.update(headers or {})
    await response.to_asgi_response(app=None, request=request)(scope, receive, send)


@dataclass
class RequestLimits:
    settings: Settings
    caller: Caller
    meter: BodyMeter
    key: tuple[str, str]


def request_guard(app: ASGIApp) -> ASGIApp:
    # Litestar builds this stack once per route, so a route's cap is worked out once.
    caps: dict[tuple[str, str], int] = {}

    def cap_for(scope: Scope, settings: Settings, key: tuple[str, str]) -> int:
        if key not in caps:
            # The route's own Litestar limit (e.g. training jobs) when it is tighter than ours.
            resolve = getattr(scope["route_handler"], "resolve_request_max_body_size", None)
            route_cap = (resolve() if resolve else None) or math.inf
            caps[key] = int(min(body_cap(settings, key), route_cap))
        return caps[key]

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await app(scope, receive, send)
            return
        settings: Settings = scope["app"].state.registry.settings
        state = scope.setdefault("state", {})
        announced, chunked, authorization = _request_head(scope)
        if authorization:
            caller = await caller_for(Request(scope))  # anonymous too when not a bearer token
        else:
            caller = state.setdefault(CALLER_STATE_KEY, ANONYMOUS)
        key = route_key(scope)
        meter = BodyMeter(
            receive,
            cap=cap_for(scope, settings, key),
            announced=announced,
            expected=chunked or (announced or 0) > 0,
            grace_s=settings.request_body_grace_seconds,
            min_rate=settings.request_body_min_rate,
        )
        state[LIMITS_STATE_KEY] = RequestLimits(settings, caller, meter, key)

        async def send_closing(message: Message) -> None:
            # An answer before the whole body arrived: close rather than read the rest.
            if message["type"] == "http.response.start" and not meter.done:
                message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            await send(message)

        await app(scope, meter, send_closing)

    return middleware


def body_gate(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        limits: RequestLimits | None = scope.get("state", {}).get(LIMITS_STATE_KEY)
        if limits is not None and limits.meter.expected:
            # Uploads need a token: refuse without one before reading megabytes. JSON routes
            # (64 KiB) answer for themselves, so that outsiders get 404 on private items.
            needs_token = limits.key in upload_caps(limits.settings)
            if needs_token and limits.caller.principal is None:
                why = (
                    "is not valid (unknown, revoked or expired)"
                    if limits.caller.failed_auth
                    else ("is missing")
                )
                exc = Unauthorized(
                    f"this request needs an API token (Authorization: Bearer <token>); the token "
                    f"{why}, so the body was not read"
                )
                await respond_problem(scope, receive, send, exc)
                return
            announced = limits.meter.announced
            if announced is not None and announced > limits.meter.cap:
                await respond_problem(scope, receive, send, TooLarge(_too_large(limits.meter.cap)))
                return
        await app(scope, receive, send)

    return middleware
