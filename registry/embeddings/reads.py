"""The hot read routes' queries as plain SQLAlchemy Core rows, not ORM objects (issue 12).

Read-only requests (resolve, a version, HEAD of a blob) need no identity map, no change
tracking and no entity construction: a Core ``select`` of the table's columns, executed on the
session's connection, costs a fraction of ``Session.exec(select(Model))``. The rows carry the
same attribute names as the models, so :mod:`.views` shapes both. Writes keep the ORM
(:mod:`.services`). Every read still checks visibility and answers NotFound, never Forbidden.
"""

from __future__ import annotations

from sqlalchemy import Connection, Row, func, literal, null, select, union_all

from client.core.errors import NotFound
from registry.accounts.access import Principal, require_visible
from registry.validation import plain_decimal

from . import search
from .models import Embedding, EmbeddingTag, EmbeddingVersion, VersionTag
from .services import DIGEST_RE

LATEST = "latest"
EMBEDDING = Embedding.__table__  # type: ignore[attr-defined]
VERSION = EmbeddingVersion.__table__  # type: ignore[attr-defined]
VERSION_TAG = VersionTag.__table__  # type: ignore[attr-defined]
CONTENT_TAG = EmbeddingTag.__table__  # type: ignore[attr-defined]

# Kinds in the one statement that reads an embedding's tags (see ``tags_of``).
_VERSION_TAG, _CONTENT_TAG = "v", "c"


def embedding_row(conn: Connection, principal: Principal | None, ns: str, name: str) -> Row:
    row = conn.execute(
        select(EMBEDDING).where(EMBEDDING.c.namespace == ns, EMBEDDING.c.name == name)
    ).first()
    if row is None:
        raise NotFound(f"embedding {ns}/{name} not found")
    require_visible(principal, row.namespace, row.visibility, f"embedding {ns}/{name}")
    return row


def version_row(conn: Connection, embedding: Row, ref: str) -> Row:
    """``ref`` is a number, a tag (``latest``: the highest version not yanked) or
    ``sha256:<hex>``; yanked versions resolve only by exact number or digest. One statement."""
    stmt = select(VERSION).where(VERSION.c.embedding_id == embedding.id)
    number = plain_decimal(ref)  # not str.isdigit(): '²' and '١' are not version numbers
    where = f"{embedding.namespace}/{embedding.name}"
    missing = f"{where} has no version {ref}"
    if number is not None:
        stmt = stmt.where(VERSION.c.number == number)
    elif ref.startswith("sha256:"):
        stmt = stmt.where(VERSION.c.digest == ref)
    elif ref == LATEST:
        stmt = stmt.where(VERSION.c.yanked.is_(False)).order_by(VERSION.c.number.desc())
        missing = f"{where} has no version that is not yanked"
    else:  # a tag always names an existing version
        missing = f"{where} has no tag {ref!r}"
        stmt = stmt.join(
            VERSION_TAG,
            (VERSION_TAG.c.embedding_id == VERSION.c.embedding_id)
            & (VERSION_TAG.c.number == VERSION.c.number),
        ).where(VERSION_TAG.c.tag == ref)
    row = conn.execute(stmt.limit(1)).first()
    if row is None:
        raise NotFound(missing)
    return row


def tags_of(conn: Connection, embedding_id: int) -> tuple[dict[str, int], list[str]]:
    """(version tag -> number with ``latest`` included, sorted content tags) in one statement."""
    rows = conn.execute(
        union_all(
            select(literal(_VERSION_TAG), VERSION_TAG.c.tag, VERSION_TAG.c.number).where(
                VERSION_TAG.c.embedding_id == embedding_id
            ),
            select(literal(_VERSION_TAG), literal(LATEST), func.max(VERSION.c.number)).where(
                VERSION.c.embedding_id == embedding_id, VERSION.c.yanked.is_(False)
            ),
            select(literal(_CONTENT_TAG), CONTENT_TAG.c.tag, null()).where(
                CONTENT_TAG.c.embedding_id == embedding_id
            ),
        )
    ).all()
    version_tags = {t: n for kind, t, n in rows if kind == _VERSION_TAG and n is not None}
    content = sorted(t for kind, t, _ in rows if kind == _CONTENT_TAG)
    return dict(sorted(version_tags.items())), content


def version_summaries(conn: Connection, embedding_id: int) -> list[Row]:
    """The columns an embedding's page lists for each version (no JSON columns loaded)."""
    v = VERSION.c
    return list(
        conn.execute(
            select(v.number, v.digest, v.family, v.vectors, v.yanked, v.created_at)
            .where(v.embedding_id == embedding_id)
            .order_by(v.number)
        ).all()
    )


def versions(conn: Connection, embedding_id: int) -> list[Row]:
    return list(
        conn.execute(
            select(VERSION).where(VERSION.c.embedding_id == embedding_id).order_by(VERSION.c.number)
        ).all()
    )


def blob_visible(conn: Connection, principal: Principal | None, digest: str) -> bool:
    """Whether a version the caller may see has this digest (one statement)."""
    if not DIGEST_RE.fullmatch(digest):
        return False
    stmt = (
        select(VERSION.c.id)
        .join(EMBEDDING, VERSION.c.embedding_id == EMBEDDING.c.id)
        .where(VERSION.c.digest == digest)
    )
    visible = search.visible_filter(principal)
    if visible is not None:
        stmt = stmt.where(visible)
    return conn.execute(stmt.limit(1)).first() is not None
