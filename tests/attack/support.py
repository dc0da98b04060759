"""What the attack tests share: the refusal assertion, a snapshot of everything the registry
stores (rows of every table and blob digests), and the placeholder filling of request cases."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import SQLModel, select

from client.core.errors import ERRORS, ErrorCode
from registry.db import session_scope


def refusal_problem(response: httpx.Response, allowed: frozenset[str]) -> str | None:
    """None when ``response`` is a proper refusal with one of ``allowed`` codes (status from
    the code's row, code in body and ``X-Error-Code``, a detail); else what is wrong."""
    code = response.headers.get("x-error-code")
    try:
        body = response.json()
    except ValueError:
        body = None
    summary = f"{response.status_code} {code} {response.text[:160]!r}"
    if code not in allowed:
        return f"expected one of {sorted(allowed)}, got {summary}"
    if response.status_code != ERRORS[ErrorCode(code)].status:
        return f"code {code} must come with {ERRORS[ErrorCode(code)].status}: {summary}"
    if not isinstance(body, dict) or body.get("code") != code or not body.get("detail"):
        return f"not a problem+json naming {code}: {summary}"
    return None


def _tables() -> list[Any]:
    import registry.models  # noqa: F401 - every table registered

    return list(SQLModel.metadata.sorted_tables)


@dataclass(frozen=True)
class Snapshot:
    rows: dict[str, int]
    blobs: frozenset[str]

    def diff(self, later: Snapshot) -> list[str]:
        out = [
            f"{table}: {count} -> {later.rows.get(table)} rows"
            for table, count in self.rows.items()
            if later.rows.get(table) != count
        ]
        if later.blobs != self.blobs:
            out.append(f"blobs added: {sorted(later.blobs - self.blobs)[:3]}")
        return out


def snapshot(app: Any) -> Snapshot:
    """Row counts of every table (one query) and every stored blob's digest."""
    registry = app.state.registry
    tables = _tables()
    query = select(*(select(func.count()).select_from(t).scalar_subquery() for t in tables))
    with session_scope(registry.engine) as session:
        counts = session.exec(query).one()
    rows = {t.name: int(c) for t, c in zip(tables, counts, strict=True)}
    return Snapshot(rows, frozenset(registry.store.iter_digests()))


@dataclass
class World:
    """What the request cases refer to on one live registry."""

    url: str
    app: Any
    tokens: dict[str, str]
    values: dict[str, str] = field(default_factory=dict)  # placeholder -> value
    victim_bytes: bytes = b""
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60))

    def request(self, method: str, path: str, who: str = "anonymous", **kw: Any) -> httpx.Response:
        headers = {**kw.pop("headers", {}), **self.headers(who)}
        return self.http.request(method, f"{self.url}{path}", headers=headers, **kw)

    def fill(self, value: Any, name: str) -> Any:
        """``value`` with every placeholder replaced (``$NAME`` by ``name``)."""
        table = {"$NAME": name, **self.values}
        if isinstance(value, str):
            for key, new in table.items():
                value = value.replace(key, new)
            return value
        if isinstance(value, bytes):
            for key, new in table.items():
                value = value.replace(key.encode(), new.encode())
            return value
        if isinstance(value, dict):
            return {self.fill(k, name): self.fill(v, name) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.fill(v, name) for v in value)
        return value

    def headers(self, who: str) -> dict[str, str]:
        token = self.tokens.get(who)
        return {"Authorization": f"Bearer {token}"} if token else {}
