"""The hot read routes' queries as plain SQLAlchemy Core rows, not ORM objects (issue 12).

Read-only requests (resolve, a version, HEAD of a blob) need no identity map, no change
tracking and no entity construction: a Core ``select`` of the table's columns, executed on the
session's connection, costs a fraction of ``Session.exec(select(Model))``. The rows carry the
same attribute names as the models, so :mod:`.views` shapes both. Writes keep the ORM
(:mod:`.services`). Every read still checks visibility and answers NotFound, never Forbidden.

The statements are built once, at import, with named ``bindparam``s for the request's values:
building a ``select`` and computing its cache key (to find the compiled SQL) cost about a
fifth of a read's CPU when done per request; a prebuilt statement memoizes its key.
"""

from __future__ import annotations

from sqlalchemy import Connection, Row, bindparam, func, literal, null, select, union_all

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

_EMBEDDING_BY_NAME = select(EMBEDDING).where(
    EMBEDDING.c.namespace == bindparam("ns"), EMBEDDING.c.name == bindparam("name")
)
# A version of one embedding by each kind of ref (see ``version_row``), at most one row.
_VERSIONS_OF = select(VERSION).where(VERSION.c.embedding_id == bindparam("embedding_id"))
_VERSION_BY_NUMBER = _VERSIONS_OF.where(VERSION.c.number == bindparam("ref")).limit(1)
_VERSION_BY_DIGEST = _VERSIONS_OF.where(VERSION.c.digest == bindparam("ref")).limit(1)
_LATEST_VERSION = (
    _VERSIONS_OF.where(VERSION.c.yanked.is_(False)).order_by(VERSION.c.number.desc()).limit(1)
)
_VERSION_BY_TAG = (
    _VERSIONS_OF.join(
        VERSION_TAG,
        (VERSION_TAG.c.embedding_id == VERSION.c.embedding_id)
        & (VERSION_TAG.c.number == VERSION.c.number),
    )
    .where(VERSION_TAG.c.tag == bindparam("ref"))
    .limit(1)
)
_TAGS = union_all(
    select(literal(_VERSION_TAG), VERSION_TAG.c.tag, VERSION_TAG.c.number).where(
        VERSION_TAG.c.embedding_id == bindparam("embedding_id")
    ),
    select(literal(_VERSION_TAG), literal(LATEST), func.max(VERSION.c.number)).where(
        VERSION.c.embedding_id == bindparam("embedding_id"), VERSION.c.yanked.is_(False)
    ),
    select(literal(_CONTENT_TAG), CONTENT_TAG.c.tag, null()).where(
        CONTENT_TAG.c.embedding_id == bindparam("embedding_id")
    ),
)
_VERSION_SUMMARIES = (
    select(
        VERSION.c.number,
        VERSION.c.digest,
        VERSION.c.family,
        VERSION.c.vectors,
        VERSION.c.yanked,
        VERSION.c.created_at,
    )
    .where(VERSION.c.embedding_id == bindparam("embedding_id"))
    .order_by(VERSION.c.number)
)
_ALL_VERSIONS = _VERSIONS_OF.order_by(VERSION.c.number)
# A digest held by a version: for an admin (sees all), and for an anonymous caller (public).
_BLOB_HELD = (
    select(VERSION.c.id)
    .join(EMBEDDING, VERSION.c.embedding_id == EMBEDDING.c.id)
    .where(VERSION.c.digest == bindparam("digest"))
    .limit(1)
)
_PUBLIC_BLOB_HELD = _BLOB_HELD.where(search.visible_filter(None))


def embedding_row(conn: Connection, principal: Principal | None, ns: str, name: str) -> Row:
    row = conn.execute(_EMBEDDING_BY_NAME, {"ns": ns, "name": name}).first()
    if row is None:
        raise NotFound(f"embedding {ns}/{name} not found")
    require_visible(principal, row.namespace, row.visibility, f"embedding {ns}/{name}")
    return row


def version_row(conn: Connection, embedding: Row, ref: str) -> Row:
    """``ref`` is a number, a tag (``latest``: the highest version not yanked) or
    ``sha256:<hex>``; yanked versions resolve only by exact number or digest. One statement."""
    number = plain_decimal(ref)  # not str.isdigit(): '²' and '١' are not version numbers
    where = f"{embedding.namespace}/{embedding.name}"
    missing = f"{where} has no version {ref}"
    params: dict[str, object] = {"embedding_id": embedding.id, "ref": ref}
    if number is not None:
        stmt, params["ref"] = _VERSION_BY_NUMBER, number
    elif ref.startswith("sha256:"):
        stmt = _VERSION_BY_DIGEST
    elif ref == LATEST:
        stmt = _LATEST_VERSION
        missing = f"{where} has no version that is not yanked"
    else:  # a tag always names an existing version
        stmt = _VERSION_BY_TAG
        missing = f"{where} has no tag {ref!r}"
    row = conn.execute(stmt, params).first()
    if row is None:
        raise NotFound(missing)
    return row


def tags_of(conn: Connection, embedding_id: int) -> tuple[dict[str, int], list[str]]:
    """(version tag -> number with ``latest`` included, sorted content tags) in one statement."""
    rows = conn.execute(_TAGS, {"embedding_id": embedding_id}).all()
    version_tags = {t: n for kind, t, n in rows if kind == _VERSION_TAG and n is not None}
    content = sorted(t for kind, t, _ in rows if kind == _CONTENT_TAG)
    return dict(sorted(version_tags.items())), content


def version_summaries(conn: Connection, embedding_id: int) -> list[Row]:
    """The columns an embedding's page lists for each version (no JSON columns loaded)."""
    return list(conn.execute(_VERSION_SUMMARIES, {"embedding_id": embedding_id}).all())


def versions(conn: Connection, embedding_id: int) -> list[Row]:
    return list(conn.execute(_ALL_VERSIONS, {"embedding_id": embedding_id}).all())


def blob_visible(conn: Connection, principal: Principal | None, digest: str) -> bool:
    """Whether a version the caller may see has this digest (one statement)."""
    if not DIGEST_RE.fullmatch(digest):
        return False
    if principal is None:
        stmt = _PUBLIC_BLOB_HELD
    elif principal.is_admin:
        stmt = _BLOB_HELD
    else:  # public, or in a namespace this caller reads: built per caller
        stmt = _BLOB_HELD.where(search.visible_filter(principal))
    return conn.execute(stmt, {"digest": digest}).first() is not None
