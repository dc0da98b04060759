"""JSON shapes of embeddings and versions, the one place the API's output format is defined."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from .hashes import LookupHit
from .models import Embedding, EmbeddingVersion
from .services import content_tags, version_summaries, version_tags


def version_json(
    embedding: Embedding, version: EmbeddingVersion, tags: dict[str, int] | None = None
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


def embedding_summary(embedding: Embedding) -> dict[str, Any]:
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


def embedding_json(session: Session, embedding: Embedding) -> dict[str, Any]:
    tags = version_tags(session, embedding)
    return {
        **embedding_summary(embedding),
        "tags": content_tags(session, embedding),
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
            for v in version_summaries(session, embedding)
        ],
    }


def lookup_json(hit: LookupHit) -> dict[str, Any]:
    """A by-hash lookup result: the version, and which of its file hashes matched."""
    return {
        **version_json(hit.embedding, hit.version),
        "matched": [{"kind": m.kind, "sha256": m.sha256} for m in hit.matched],
    }
