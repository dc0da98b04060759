"""Similar embeddings and near-duplicates: the index proposes candidates by cosine, the database
decides which the caller may see (visible, not yanked, still there) — the same visibility rule
as browsing (``search.visible_filter``), so a private item never shows to an outsider."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from client.core.errors import BadRequest
from registry.accounts.access import Principal
from registry.db import read_scope
from registry.embeddings import services as embeddings
from registry.embeddings.models import Embedding, EmbeddingVersion
from registry.embeddings.search import visible_filter

from .index import SimilarityIndex, index_for
from .summaries import load_combined

MAX_LIMIT = 50


@dataclass
class SimilarHit:
    embedding: Embedding
    version: EmbeddingVersion
    score: float


def similar_embeddings(
    engine: Engine, principal: Principal | None, ns: str, name: str, limit: int = 10
) -> list[SimilarHit]:
    """The nearest visible embeddings of ``ns/name``'s family to its latest version, best first
    (404 when the caller may not see ``ns/name``; empty when it has no summary)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be 1-{MAX_LIMIT}")
    with read_scope(engine) as session:
        embedding, version = embeddings.resolve_version(session, principal, ns, name, "latest")
        query = load_combined(session, version.id, version.family)
        if query is None:
            return []
        index = index_for(engine)
        index.refresh(session)
        return _visible_nearest(
            session, index, principal, version.family, query, limit, embedding.id
        )


def near_duplicates(
    engine: Engine,
    principal: Principal | None,
    version: EmbeddingVersion,
    threshold: float,
    limit: int = 5,
) -> list[SimilarHit]:
    """Other embeddings the publisher can see whose vectors are at least ``threshold`` cosine
    to the version just published (a re-upload under another name, issue 10). The query is the
    version's row in the index (the refresh has just loaded it), and only candidates above the
    threshold go to the database: a publish with no near-duplicate asks it nothing more."""
    index = index_for(engine)
    with read_scope(engine) as session:
        index.refresh(session)
        query = index.vector(version.id, version.digest)
        if query is None:  # not loaded (a window's worth of later commits): read it
            query = load_combined(session, version.id, version.family)
        if query is None:
            return []
        return _visible_nearest(
            session,
            index,
            principal,
            version.family,
            query,
            limit,
            version.embedding_id,
            min_score=threshold,
        )


def _visible_nearest(
    session: Session,
    index: SimilarityIndex,
    principal: Principal | None,
    family: str,
    query: np.ndarray,
    limit: int,
    skip_embedding: int,
    min_score: float | None = None,
) -> list[SimilarHit]:
    """The ``limit`` best visible candidates (scoring at least ``min_score``, as reported)."""
    count = limit
    while True:
        candidates = index.nearest(family, query, count, skip_embedding)
        if min_score is not None:  # best first: the rest score lower still
            candidates = [c for c in candidates if round(c.score, 6) >= min_score]
        hits = _filter_visible(session, principal, candidates)
        if len(hits) >= limit or len(candidates) < count:
            return hits[:limit]
        count *= 4  # many invisible near neighbours: look further down the list


def _filter_visible(session: Session, principal: Principal | None, candidates) -> list[SimilarHit]:
    if not candidates:
        return []
    stmt = (
        select(Embedding, EmbeddingVersion)
        .join(EmbeddingVersion, EmbeddingVersion.embedding_id == Embedding.id)
        .where(
            EmbeddingVersion.id.in_([c.version_id for c in candidates]),
            EmbeddingVersion.yanked.is_(False),
        )
    )
    visible = visible_filter(principal)
    if visible is not None:
        stmt = stmt.where(visible)
    found = {v.id: (e, v) for e, v in session.exec(stmt).all()}
    return [
        SimilarHit(*found[c.version_id], round(c.score, 6))
        for c in candidates
        # (a row loaded for a deleted version whose id SQLite has handed out again: skipped)
        if c.version_id in found and found[c.version_id][1].digest == c.digest
    ]
