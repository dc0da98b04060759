"""Operational endpoints and request middleware: health, readiness, Prometheus metrics,
structured JSON logs with a request id."""

from __future__ import annotations

import json
import logging
import os
import re
import time

from litestar import Response, get
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy import text

from client.core.errors import Unavailable
from registry.context import Registry
from registry.db import session_scope

log = logging.getLogger("registry.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("registry")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


class RequestMetrics:
    def __init__(self, registry) -> None:
        self.requests = Counter(
            "lexicon_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "lexicon_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=registry,
        )
        # Each label set's child, found once: ``labels()`` validates and locks on every call.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


# An id we echo in a response header and write to the log: a plain token, or we use our own.
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


def _given_request_id(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` (the last one, if sent twice) when it is a plain token of
    at most 64 characters; "" otherwise (not UTF-8, spaces, too long: a new id is made)."""
    given = b""
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            given = value
    return given.decode("ascii") if _REQUEST_ID.fullmatch(given) else ""


def request_middleware(app: ASGIApp) -> ASGIApp:
    """Gives each request an id (``X-Request-ID`` in and out), logs one JSON line, counts it."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        request_id = _given_request_id(scope) or os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("path_template") or scope.get("path", "")
            metrics: RequestMetrics | None = (
                getattr(scope["app"].state, "request_metrics", None) if "app" in scope else None
            )
            if metrics is not None:
                metrics.observe(scope["method"], route, status, elapsed)
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "request",
                    extra={
                        "fields": {
                            "request_id": request_id,
                            "method": scope["method"],
                            "path": scope["path"],
                            "status": status,
                            "ms": round(elapsed * 1000, 1),
                        }
                    },
                )

    return middleware


@get("/healthz", sync_to_thread=False, include_in_schema=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", sync_to_thread=True, include_in_schema=False)
def readyz(registry: Registry) -> Response:
    checks: dict[str, str] = {}
    try:
        with session_scope(registry.engine) as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports every failure
        checks["database"] = f"error: {exc}"
    try:
        registry.store.check()
        checks["storage"] = "ok"
    except Unavailable as exc:
        checks["storage"] = f"error: {exc}"
    ready = all(v == "ok" for v in checks.values())
    return Response({"ready": ready, **checks}, status_code=200 if ready else 503)


@get("/metrics", sync_to_thread=False, include_in_schema=False)
def metrics(registry: Registry) -> Response:
    return Response(generate_latest(registry.metrics), media_type=CONTENT_TYPE_LATEST)
