"""JSON shapes of embeddings and versions, the one place the API's output format is defined."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row
from sqlmodel import Session

from .hashes import LookupHit
from .models import Embedding, EmbeddingVersion
from .reads import tags_of, version_summaries

# A model object or a Core row of the same table: both have the columns as attributes.
EmbeddingLike = Embedding | Row
VersionLike = EmbeddingVersion | Row


def version_json(
    embedding: EmbeddingLike, version: VersionLike, tags: dict[str, int] | None = None
) -> dict[str, Any]:
    return {
        "namespace": embedding.namespace,
        "name": embedding.name,
        "ref": f"{embedding.namespace}/{embedding.name}@{version.number}",
        "number": version.number,
        "digest": version.digest,
        "size": version.size,
        "family": version.family,
        "base_model": version.base_model,
        "vectors": version.vectors,
        "encoders": version.encoders,
        "dtype": version.dtype,
        "source_format": version.source_format,
        "upload_sha256": version.upload_sha256,
        "trigger": version.trigger,
        "notes": version.notes,
        "training": version.training,
        "yanked": version.yanked,
        "created_at": version.created_at.isoformat(),
        "created_by": version.created_by,
        "tags": sorted(t for t, n in (tags or {}).items() if n == version.number),
    }


def embedding_summary(embedding: EmbeddingLike) -> dict[str, Any]:
    return {
        "namespace": embedding.namespace,
        "name": embedding.name,
        "description": embedding.description,
        "type": embedding.concept_type,
        "trigger": embedding.trigger,
        "family": embedding.family,
        "license": embedding.license,
        "visibility": embedding.visibility,
        "downloads": embedding.downloads,
        "stars": embedding.stars,
        "created_at": embedding.created_at.isoformat(),
        "updated_at": embedding.updated_at.isoformat(),
    }


def embedding_json(session: Session | Connection, embedding: EmbeddingLike) -> dict[str, Any]:
    """The embedding with its tags and version list: two statements after the embedding's."""
    conn = session.connection() if isinstance(session, Session) else session
    tags, content = tags_of(conn, embedding.id)
    return {
        **embedding_summary(embedding),
        "tags": content,
        "version_tags": tags,
        "latest": tags.get("latest"),
        "versions": [
            {
                "number": v.number,
                "digest": v.digest,
                "family": v.family,
                "vectors": v.vectors,
                "yanked": v.yanked,
                "created_at": v.created_at.isoformat(),
            }
            for v in version_summaries(conn, embedding.id)
        ],
    }


def lookup_json(hit: LookupHit) -> dict[str, Any]:
    """A by-hash lookup result: the version, and which of its file hashes matched."""
    return {
        **version_json(hit.embedding, hit.version),
        "matched": [{"kind": m.kind, "sha256": m.sha256} for m in hit.matched],
    }
