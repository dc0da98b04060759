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

from sqlalchemy import and_, exists, literal_column, or_, text, tuple_
from sqlmodel import Session, select

from client.core.errors import BadRequest, LexiconError
from registry import validation
from registry.accounts.access import Principal

from .models import Embedding, EmbeddingTag, EmbeddingVersion

SORTS = {
    "downloads": Embedding.downloads,
    "stars": Embedding.stars,
    "recent": Embedding.updated_at,
    "trending": Embedding.trending,
}
MAX_LIMIT = 100
_WORD = re.compile(r"[\w]+", re.UNICODE)


def _tags(session: Session, embedding_id: int) -> list[str]:
    return list(
        session.exec(
            select(EmbeddingTag.tag).where(EmbeddingTag.embedding_id == embedding_id)
        ).all()
    )


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


def _text_match(session: Session, q: str):
    words = _WORD.findall(q.lower())
    if not words:
        return None
    if session.get_bind().dialect.name == "sqlite":
        match = " AND ".join(f'"{w}"*' for w in words)
        return _sqlite_probe_id().in_(
            select(text("rowid"))
            .select_from(text("embedding_fts"))
            .where(text("embedding_fts MATCH :match").bindparams(match=match))
        )
    tsquery = " & ".join(f"{w}:*" for w in words)
    return Embedding.id.in_(
        select(text("embedding_id"))
        .select_from(text("embedding_fts"))
        .where(text("document @@ to_tsquery('simple', :tsq)").bindparams(tsq=tsquery))
    )


def _plan_for_these_values(session: Session) -> None:
    """On PostgreSQL, plan this transaction's statements for their actual parameters.

    psycopg prepares a statement server-side after its 5th run on a connection; from then on
    PostgreSQL may switch to a *generic* plan, which guesses 500 rows for ``document @@
    to_tsquery($1)`` whatever the word: a common word then took ~600 ms instead of ~150 ms
    (issue 12). ``SET LOCAL`` lasts until the transaction ends, so other queries keep the cache.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def visible_filter(principal: Principal | None):
    """Public items, plus private ones in namespaces the caller belongs to (all for admins)."""
    if principal is not None and principal.is_admin:
        return None
    if principal is None:  # a plain equality, so the planner can use it (no OR with IN ())
        return Embedding.visibility == "public"
    readable = [principal.username, *principal.roles]
    return or_(Embedding.visibility == "public", Embedding.namespace.in_(readable))


def search_embeddings(
    session: Session, principal: Principal | None, query: SearchQuery
) -> tuple[list[Embedding], str | None]:
    for param in ("q", "family", "type", "tag", "author", "cursor"):
        validation.no_nul(getattr(query, param), param)
    if query.sort not in SORTS:
        raise BadRequest(f"unknown sort {query.sort!r}; use {', '.join(SORTS)}")
    if not 1 <= query.limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be 1-{MAX_LIMIT}")
    key = SORTS[query.sort]
    live = EmbeddingVersion.embedding_id == Embedding.id
    version_filter = [live, EmbeddingVersion.yanked.is_(False)]
    if query.family:
        version_filter.append(EmbeddingVersion.family == query.family)
    stmt = select(Embedding).where(exists().where(and_(*version_filter)))
    visible = visible_filter(principal)
    if visible is not None:
        stmt = stmt.where(visible)
    if query.type:
        stmt = stmt.where(Embedding.concept_type == query.type)
    if query.author:
        stmt = stmt.where(Embedding.namespace == query.author)
    if query.tag:
        # An uncorrelated IN: the tag index yields the ids once (a semi-join), where a
        # correlated EXISTS probed embedding_tag for every candidate row (279 ms at 100k).
        tagged = select(EmbeddingTag.embedding_id).where(EmbeddingTag.tag == query.tag)
        member = _sqlite_probe_id() if session.get_bind().dialect.name == "sqlite" else Embedding.id
        stmt = stmt.where(member.in_(tagged))
    if query.q:
        match = _text_match(session, query.q)
        if match is not None:
            stmt = stmt.where(match)
    if query.cursor:
        value, last_id = _decode_cursor(query.cursor, query.sort)
        # A row-value comparison is one index range on (key, id); the equivalent OR was only a
        # filter, so a deep page read and discarded every row before it.
        stmt = stmt.where(tuple_(key, Embedding.id) < tuple_(value, last_id))
    stmt = stmt.order_by(key.desc(), Embedding.id.desc()).limit(query.limit + 1)
    _plan_for_these_values(session)
    rows = list(session.exec(stmt).all())
    next_cursor = None
    if len(rows) > query.limit:
        rows = rows[: query.limit]
        last = rows[-1]
        next_cursor = _encode_cursor(getattr(last, key.key), last.id)
    return rows, next_cursor
