"""Reading and managing embeddings: resolve references, version tags, yank, metadata, stars,
deletion and downloads (by-hash lookups: :mod:`.hashes`). Every read checks visibility and
answers NotFound, never Forbidden, for a private embedding the caller may not see."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import Row, func, literal, union_all, update
from sqlmodel import Session, select

from client.core.errors import BadRequest, NotFound
from client.core.names import validate_slug
from registry.accounts.access import (
    Principal,
    require_owner,
    require_scope,
    require_visible,
    require_write,
)
from registry.accounts.models import Scope
from registry.validation import plain_decimal

from . import search
from .models import Embedding, EmbeddingTag, EmbeddingVersion, Star, VersionTag
from .publish import PublishMetadata, set_content_tags

LATEST = "latest"
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


def get_embedding(session: Session, principal: Principal | None, ns: str, name: str) -> Embedding:
    row = session.exec(
        select(Embedding).where(Embedding.namespace == ns, Embedding.name == name)
    ).first()
    if row is None:
        raise NotFound(f"embedding {ns}/{name} not found")
    require_visible(principal, row.namespace, row.visibility, f"embedding {ns}/{name}")
    return row


def versions_of(session: Session, embedding: Embedding) -> list[EmbeddingVersion]:
    return list(
        session.exec(
            select(EmbeddingVersion)
            .where(EmbeddingVersion.embedding_id == embedding.id)
            .order_by(EmbeddingVersion.number)
        ).all()
    )


def version_summaries(session: Session, embedding: Embedding) -> list[Row]:
    """The columns an embedding's page lists for each version (no JSON columns loaded)."""
    v = EmbeddingVersion
    return list(
        session.exec(
            select(v.number, v.digest, v.family, v.vectors, v.yanked, v.created_at)
            .where(v.embedding_id == embedding.id)
            .order_by(v.number)
        ).all()
    )


def version_tags(session: Session, embedding: Embedding) -> dict[str, int]:
    """Tag -> version number, ``latest`` included (the highest non-yanked version): one
    statement, the stored tags and ``latest`` side by side."""
    stored = select(VersionTag.tag, VersionTag.number).where(
        VersionTag.embedding_id == embedding.id
    )
    latest = select(literal(LATEST), func.max(EmbeddingVersion.number)).where(
        EmbeddingVersion.embedding_id == embedding.id, EmbeddingVersion.yanked.is_(False)
    )
    rows = session.exec(union_all(stored, latest)).all()  # type: ignore[call-overload]
    return {tag: number for tag, number in sorted(rows) if number is not None}


def content_tags(session: Session, embedding: Embedding) -> list[str]:
    return sorted(
        session.exec(select(EmbeddingTag.tag).where(EmbeddingTag.embedding_id == embedding.id))
    )


def _latest(session: Session, embedding: Embedding) -> EmbeddingVersion | None:
    return session.exec(
        select(EmbeddingVersion)
        .where(EmbeddingVersion.embedding_id == embedding.id, EmbeddingVersion.yanked.is_(False))
        .order_by(EmbeddingVersion.number.desc())
    ).first()


def resolve_version(
    session: Session, principal: Principal | None, ns: str, name: str, ref: str
) -> tuple[Embedding, EmbeddingVersion]:
    """``ref`` is a number, a tag (``latest`` by default) or ``sha256:<hex>``. Yanked versions
    resolve only by exact number or digest."""
    embedding = get_embedding(session, principal, ns, name)
    where = [EmbeddingVersion.embedding_id == embedding.id]
    number = plain_decimal(ref)  # not str.isdigit(): '²' and '١' are not version numbers
    missing = f"version {ref}"
    if number is not None:
        where.append(EmbeddingVersion.number == number)
    elif ref.startswith("sha256:"):
        where.append(EmbeddingVersion.digest == ref)
    elif ref == LATEST:
        version = _latest(session, embedding)
        if version is None:
            raise NotFound(f"{ns}/{name} has no version that is not yanked")
        return embedding, version
    else:  # a tag, joined in the same statement (a tag always names an existing version)
        missing = f"tag {ref!r}"
        where += [
            VersionTag.embedding_id == embedding.id,
            VersionTag.tag == ref,
            VersionTag.number == EmbeddingVersion.number,
        ]
    version = session.exec(select(EmbeddingVersion).where(*where)).first()
    if version is None:
        raise NotFound(f"{ns}/{name} has no {missing}")
    return embedding, version


def set_tag(
    session: Session, principal: Principal | None, ns: str, name: str, tag: str, number: int
) -> None:
    embedding = get_embedding(session, principal, ns, name)
    require_write(principal, ns)
    validate_slug(tag, "tag")
    if tag == LATEST or tag.isdigit() or tag.startswith("sha256"):
        raise BadRequest(f"{tag!r} cannot be set: 'latest' is automatic, numbers are versions")
    resolve_version(session, principal, ns, name, str(number))
    row = session.get(VersionTag, (embedding.id, tag)) or VersionTag(
        embedding_id=embedding.id, tag=tag, number=number
    )
    row.number = number
    row.updated_at = datetime.now(UTC)
    session.add(row)


def delete_tag(session: Session, principal: Principal | None, ns: str, name: str, tag: str) -> None:
    embedding = get_embedding(session, principal, ns, name)
    require_write(principal, ns)
    row = session.get(VersionTag, (embedding.id, tag))
    if row is None:
        raise NotFound(f"{ns}/{name} has no tag {tag!r}")
    session.delete(row)


def set_yanked(
    session: Session, principal: Principal | None, ns: str, name: str, number: int, yanked: bool
) -> EmbeddingVersion:
    _, version = resolve_version(session, principal, ns, name, str(number))
    require_write(principal, ns)
    version.yanked = yanked
    session.add(version)
    return version


def update_embedding(
    session: Session, principal: Principal | None, ns: str, name: str, meta: PublishMetadata
) -> Embedding:
    embedding = get_embedding(session, principal, ns, name)
    require_write(principal, ns)
    if meta.visibility == "public" and embedding.visibility != "public":
        # Publishing a private item to the world is the namespace owners' call, not a
        # maintainer's (issue 8, defect 9).
        require_owner(principal, ns)
    for field, column in (
        ("description", "description"),
        ("type", "concept_type"),
        ("trigger", "trigger"),
        ("license", "license"),
        ("visibility", "visibility"),
    ):
        value = getattr(meta, field)
        if value is not None:
            setattr(embedding, column, value)
    if meta.tags is not None:
        set_content_tags(session, embedding, meta.tags)
    embedding.updated_at = datetime.now(UTC)
    session.add(embedding)
    session.flush()
    search.index_embedding(session, embedding)
    return embedding


def delete_embedding(session: Session, principal: Principal | None, ns: str, name: str) -> None:
    """Rows go; blobs stay until ``lexicon-registry gc`` (other embeddings may share them)."""
    embedding = get_embedding(session, principal, ns, name)
    require_owner(principal, ns)
    search.remove_from_index(session, embedding.id)
    for model in (VersionTag, EmbeddingTag, Star, EmbeddingVersion):
        for row in session.exec(select(model).where(model.embedding_id == embedding.id)):
            session.delete(row)
    session.flush()
    session.delete(embedding)


def _update_trending(session: Session, embedding: Embedding) -> None:
    embedding.trending = search.trending_score(
        embedding.downloads, embedding.stars, embedding.created_at
    )
    session.add(embedding)


def set_star(
    session: Session, principal: Principal | None, ns: str, name: str, starred: bool
) -> Embedding:
    embedding = get_embedding(session, principal, ns, name)
    principal = require_scope(principal, Scope.READ)
    row = session.get(Star, (principal.user_id, embedding.id))
    if starred and row is None:
        session.add(Star(user_id=principal.user_id, embedding_id=embedding.id))
    elif not starred and row is not None:
        session.delete(row)
    session.flush()
    count = session.exec(select(func.count()).where(Star.embedding_id == embedding.id)).one()
    embedding.stars = int(count)
    _update_trending(session, embedding)
    return embedding


def count_download(session: Session, embedding_id: int) -> None:
    """One more download, and the trending score that follows from it. Its own short write
    transaction, after the read that resolved the file: the read never holds the write lock."""
    downloads, stars, created_at = session.exec(
        update(Embedding)
        .where(Embedding.id == embedding_id)
        .values(downloads=Embedding.downloads + 1)
        .returning(Embedding.downloads, Embedding.stars, Embedding.created_at)
    ).one()  # type: ignore[call-overload]
    session.exec(
        update(Embedding)
        .where(Embedding.id == embedding_id)
        .values(trending=search.trending_score(downloads, stars, created_at))
    )  # type: ignore[call-overload]


def blob_visible(session: Session, principal: Principal | None, digest: str) -> bool:
    if not DIGEST_RE.fullmatch(digest):
        return False
    stmt = (
        select(EmbeddingVersion.id)
        .join(Embedding, EmbeddingVersion.embedding_id == Embedding.id)
        .where(EmbeddingVersion.digest == digest)
    )
    visible = search.visible_filter(principal)
    if visible is not None:
        stmt = stmt.where(visible)
    return session.exec(stmt.limit(1)).first() is not None
