"""Community browsing: full-text search (SQLite FTS5 / PostgreSQL tsvector), filters, sorts and
keyset cursors that never skip or repeat an item while pages are read.

The index table ``embedding_fts`` is created by the initial migration and kept in step here by
``index_embedding`` whenever an embedding's searchable text changes.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy import (
    Connection,
    Integer,
    Row,
    Select,
    and_,
    bindparam,
    exists,
    literal_column,
    or_,
    select,
    text,
    tuple_,
)
from sqlmodel import Session

from client.core.errors import BadRequest, LexiconError
from registry import validation
from registry.accounts.access import Principal

from .models import Embedding, EmbeddingTag, EmbeddingVersion

EMBEDDING = Embedding.__table__  # type: ignore[attr-defined]
VERSION = EmbeddingVersion.__table__  # type: ignore[attr-defined]
CONTENT_TAG = EmbeddingTag.__table__  # type: ignore[attr-defined]
SORTS = {
    "downloads": EMBEDDING.c.downloads,
    "stars": EMBEDDING.c.stars,
    "recent": EMBEDDING.c.updated_at,
    "trending": EMBEDDING.c.trending,
}
MAX_LIMIT = 100
_WORD = re.compile(r"[\w]+", re.UNICODE)


def _tags(session: Session, embedding_id: int) -> list[str]:
    tags = select(EmbeddingTag.tag).where(EmbeddingTag.embedding_id == embedding_id)
    return list(session.execute(tags).scalars().all())


def index_embedding(session: Session, embedding: Embedding) -> None:
    """(Re)write the embedding's row in the search index."""
    write_index(session, [index_fields(embedding, _tags(session, embedding.id))])


def index_fields(embedding: Embedding, tags: list[str]) -> dict[str, object]:
    """The searchable text of one embedding, as :func:`write_index` takes it."""
    return {
        "id": embedding.id,
        "namespace": embedding.namespace,
        "name": embedding.name.replace("-", " ").replace("_", " ") + " " + embedding.name,
        "description": embedding.description or "",
        "tags": " ".join(tags),
        "trigger": (embedding.trigger or "").strip("<>"),
    }


def write_index(session: Session, rows: list[dict[str, object]]) -> None:
    """(Re)write many index rows in one executemany: the single place the index is built, for
    a publish (one row) and for bulk loads such as bench/seed.py (thousands)."""
    if not rows:
        return
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("DELETE FROM embedding_fts WHERE rowid = :id"), rows)
        session.execute(
            text(
                "INSERT INTO embedding_fts (rowid, namespace, name, description, tags, trigger) "
                "VALUES (:id, :namespace, :name, :description, :tags, :trigger)"
            ),
            rows,
        )
    else:
        session.execute(
            text(
                "INSERT INTO embedding_fts (embedding_id, document) VALUES (:id, "
                "setweight(to_tsvector('simple', :name), 'A') || "
                "setweight(to_tsvector('simple', :trigger || ' ' || :tags), 'B') || "
                "setweight(to_tsvector('simple', :namespace || ' ' || :description), 'C')) "
                "ON CONFLICT (embedding_id) DO UPDATE SET document = EXCLUDED.document"
            ),
            rows,
        )


def remove_from_index(session: Session, embedding_id: int) -> None:
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("DELETE FROM embedding_fts WHERE rowid = :id"), {"id": embedding_id})


def trending_score(downloads: int, stars: int, created_at: datetime) -> float:
    """A 'hot' score: log of interest plus creation time, so newer items need fewer downloads.
    It only changes on events, which keeps keyset pagination stable."""
    created = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
    return math.log10(max(downloads + 3 * stars, 1)) + created.timestamp() / 45_000


@dataclass
class SearchQuery:
    q: str | None = None
    family: str | None = None
    type: str | None = None
    tag: str | None = None
    author: str | None = None
    sort: str = "downloads"
    limit: int = 20
    cursor: str | None = None


def _encode_cursor(value: object, embedding_id: int) -> str:
    raw = json.dumps([value.isoformat() if hasattr(value, "isoformat") else value, embedding_id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> tuple[object, int]:
    """A cursor is ours only if it decodes to ``[key, id]`` with the sort key's own type; a
    tampered one is a 400 (never a 500 from the database comparing 'x' with an integer)."""
    bad = f"invalid cursor for sort={sort}; start again without one"
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value, embedding_id = validation.loads(base64.urlsafe_b64decode(padded), "cursor")
    except (ValueError, TypeError, LexiconError):
        raise BadRequest(bad) from None
    if isinstance(embedding_id, bool) or not isinstance(embedding_id, int):
        raise BadRequest(bad)
    if sort == "recent":
        try:
            value = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            value = None
        if value is None or value.tzinfo is None:  # naive: 500 on PostgreSQL before
            raise BadRequest(f"{bad} (its time must carry a UTC offset)")
    elif sort == "trending":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadRequest(bad)
    elif isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(bad)
    return value, embedding_id


def _sqlite_probe_id():
    """``+embedding.id`` for SQLite's ``IN (subquery)`` filters: the unary plus keeps SQLite
    from driving the query from the subquery's rows (which, for a common word or tag, means
    sorting ~30k matches in a temp B-tree: 500 ms at 100k) and makes it walk the sort index,
    probing the subquery's ids, and stop after one page. A rare term then walks more of the
    index (~30 ms at 100k), a far better worst case. PostgreSQL's planner weighs this itself."""
    return literal_column("+embedding.id")


def _text_match(dialect: str):
    """Ids whose index row matches ``:match`` (see :func:`_match_words` for its text)."""
    if dialect == "sqlite":
        return _sqlite_probe_id().in_(
            select(text("rowid"))
            .select_from(text("embedding_fts"))
            .where(text("embedding_fts MATCH :match"))
        )
    return EMBEDDING.c.id.in_(
        select(text("embedding_id"))
        .select_from(text("embedding_fts"))
        .where(text("document @@ to_tsquery('simple', :match)"))
    )


def _match_words(dialect: str, words: list[str]) -> str:
    """Every word as a prefix: an FTS5 query on SQLite, a tsquery on PostgreSQL."""
    if dialect == "sqlite":
        return " AND ".join(f'"{w}"*' for w in words)
    return " & ".join(f"{w}:*" for w in words)


# psycopg prepares a statement server-side after its 5th run on a connection; from then on
# PostgreSQL may switch to a *generic* plan, which guesses 500 rows for ``document @@
# to_tsquery($1)`` whatever the word: a common word then took ~600 ms instead of ~150 ms
# (issue 12). ``SET LOCAL`` lasts until the transaction ends, so other queries keep the cache.
_PLAN_FOR_THESE_VALUES = text("SET LOCAL plan_cache_mode = force_custom_plan")


def visible_filter(principal: Principal | None):
    """Public items, plus private ones in namespaces the caller belongs to (all for admins)."""
    if principal is not None and principal.is_admin:
        return None
    if principal is None:  # a plain equality, so the planner can use it (no OR with IN ())
        return Embedding.visibility == "public"
    readable = [principal.username, *principal.roles]
    return or_(Embedding.visibility == "public", Embedding.namespace.in_(readable))


# What a browse statement's shape depends on: the caller's kind and which filters are present.
_ANONYMOUS, _MEMBER, _ADMIN = "anonymous", "member", "admin"
# filter -> the parameter that says it is present
_FILTERS = {
    "family": "family",
    "type": "type",
    "author": "author",
    "tag": "tag",
    "q": "match",
    "cursor": "after_id",
}


@lru_cache(maxsize=512)
def _browse_statement(dialect: str, sort: str, caller: str, filters: frozenset[str]) -> Select:
    """The browse/search statement for one shape, built once: the request's values are named
    ``bindparam``s (``family``, ``type``, ``author``, ``tag``, ``match``, ``after_key``,
    ``after_id``, ``readable``, ``limit``). Building a ``select`` and its cache key per request
    was ~30% of a search's CPU (issue 12); a prebuilt statement memoizes its key."""
    e = EMBEDDING.c
    key = SORTS[sort]
    version_filter = [VERSION.c.embedding_id == e.id, VERSION.c.yanked.is_(False)]
    if "family" in filters:
        version_filter.append(VERSION.c.family == bindparam("family"))
    stmt = select(EMBEDDING).where(exists().where(and_(*version_filter)))
    if caller == _ANONYMOUS:  # a plain equality, so the planner can use it (no OR with IN ())
        stmt = stmt.where(e.visibility == "public")
    elif caller == _MEMBER:
        readable = bindparam("readable", expanding=True)
        stmt = stmt.where(or_(e.visibility == "public", e.namespace.in_(readable)))
    if "type" in filters:
        stmt = stmt.where(e.concept_type == bindparam("type"))
    if "author" in filters:
        stmt = stmt.where(e.namespace == bindparam("author"))
    if "tag" in filters:
        # An uncorrelated IN: the tag index yields the ids once (a semi-join), where a
        # correlated EXISTS probed embedding_tag for every candidate row (279 ms at 100k).
        tagged = select(CONTENT_TAG.c.embedding_id).where(CONTENT_TAG.c.tag == bindparam("tag"))
        member = _sqlite_probe_id() if dialect == "sqlite" else e.id
        stmt = stmt.where(member.in_(tagged))
    if "q" in filters:
        stmt = stmt.where(_text_match(dialect))
    if "cursor" in filters:
        # A row-value comparison is one index range on (key, id); the equivalent OR was only a
        # filter, so a deep page read and discarded every row before it.
        after = tuple_(bindparam("after_key", type_=key.type), bindparam("after_id", type_=Integer))
        stmt = stmt.where(tuple_(key, e.id) < after)
    limit = bindparam("limit", type_=Integer)
    return stmt.order_by(key.desc(), e.id.desc()).limit(limit)


def search_embeddings(
    db: Session | Connection, principal: Principal | None, query: SearchQuery
) -> tuple[list[Row], str | None]:
    """One page of embeddings (table rows, with the model's attribute names) and the cursor of
    the next page (None on the last)."""
    for param in ("q", "family", "type", "tag", "author", "cursor"):
        validation.no_nul(getattr(query, param), param)
    if query.sort not in SORTS:
        raise BadRequest(f"unknown sort {query.sort!r}; use {', '.join(SORTS)}")
    if not 1 <= query.limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be 1-{MAX_LIMIT}")
    conn = db.connection() if isinstance(db, Session) else db
    dialect = conn.dialect.name
    values = {"family": query.family, "type": query.type, "author": query.author}
    params: dict[str, object] = {name: value for name, value in values.items() if value}
    params["limit"] = query.limit + 1
    if query.tag:
        params["tag"] = query.tag
    words = _WORD.findall(query.q.lower()) if query.q else []
    if words:
        params["match"] = _match_words(dialect, words)
    if query.cursor:
        params["after_key"], params["after_id"] = _decode_cursor(query.cursor, query.sort)
    if principal is None:
        caller = _ANONYMOUS
    elif principal.is_admin:
        caller = _ADMIN
    else:
        caller = _MEMBER
        params["readable"] = [principal.username, *principal.roles]
    shape = frozenset(name for name, bound in _FILTERS.items() if bound in params)
    stmt = _browse_statement(dialect, query.sort, caller, shape)
    if dialect == "postgresql":
        conn.execute(_PLAN_FOR_THESE_VALUES)
    rows = list(conn.execute(stmt, params).all())
    next_cursor = None
    if len(rows) > query.limit:
        rows = rows[: query.limit]
        last = rows[-1]
        next_cursor = _encode_cursor(getattr(last, SORTS[query.sort].key), last.id)
    return rows, next_cursor
