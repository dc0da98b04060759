"""The access matrix's vocabulary: the callers (in the order of each row's nine answers), the
resources, answers shared by many rows, and the ``Row`` type. The rows themselves are in
``access_matrix.py`` (API) and ``access_matrix_web.py`` (web pages)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CALLERS = ["anon", "outsider", "member", "maint", "owner", "admin", "worker", "revoked", "expired"]
RESOURCES = {"pub": "acme/pub", "user": "olivia/secret", "org": "acme/brand"}
JOB_NAMESPACES = {"user": "olivia", "org": "acme"}

# Answers shared by many rows.
READ = {
    "pub": "200 200 200 200 200 200 200 200 200",
    "user": "404 404 404 404 200 200 404 404 404",
    "org": "404 404 200 200 200 200 404 404 404",
}
LIST = {k: v.replace("200", "L").replace("404", "H") for k, v in READ.items()}
STAR = {**READ, "pub": "401 200 200 200 200 200 403 401 401"}


def write(ok: str) -> dict[str, str]:
    """Namespace writers (owner, maintainer in the org, admin); readers see but may not write."""
    return {
        "pub": f"401 403 403 {ok} {ok} {ok} 403 401 401",
        "user": f"404 404 404 404 {ok} {ok} 404 404 404",
        "org": f"404 404 403 {ok} {ok} {ok} 404 404 404",
    }


def owner_only(ok: str) -> dict[str, str]:
    return {
        "pub": f"401 403 403 403 {ok} {ok} 403 401 401",
        "user": f"404 404 404 404 {ok} {ok} 404 404 404",
        "org": f"404 404 403 403 {ok} {ok} 404 404 404",
    }


ACCOUNT = "401 200 200 200 200 200 403 401 401"  # any user token with read
JOB_SEEN = {
    "user": "404 404 404 404 200 200 404 404 404",
    "org": "404 404 200 200 200 200 404 404 404",
}
WORKER_ONLY = "401 403 403 403 403 409 200 401 401"  # the worker holding the lease
EVERYONE = "200 200 200 200 200 200 200 200 200"


@dataclass(frozen=True)
class Row:
    """One route. ``path`` and ``body`` are built per cell from a :class:`Cell`; ``prepare``
    runs before the cell (as the owner) to make what the request consumes."""

    method: str
    template: str  # the route as the app declares it, without :type converters
    label: str
    expect: dict[str, str]
    path: Callable[[Any], str]
    body: Callable[[Any], dict[str, Any]] = lambda c: {}
    prepare: Callable[[Any], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


E = "/api/v1/embeddings/{namespace}/{name}"
J = "/api/v1/training-jobs/{job_id}"


def _json(data: dict[str, Any]) -> Callable[[Any], dict[str, Any]]:
    return lambda c: {"json": data}
