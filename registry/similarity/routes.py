"""GET /api/v1/embeddings/{ns}/{name}/similar: the nearest visible embeddings of its family."""

from __future__ import annotations

from typing import Any

from litestar import get

from registry.accounts.access import Principal
from registry.context import Registry
from registry.embeddings.views import embedding_summary

from .services import SimilarHit, near_duplicates, similar_embeddings


def hit_json(hit: SimilarHit) -> dict[str, Any]:
    return {
        **embedding_summary(hit.embedding),
        "ref": f"{hit.embedding.namespace}/{hit.embedding.name}@{hit.version.number}",
        "version": hit.version.number,
        "score": hit.score,
    }


@get(
    "/api/v1/embeddings/{namespace:str}/{name:str}/similar",
    sync_to_thread=True,
    tags=["embeddings"],
    summary="The nearest visible embeddings of the same family, with cosine scores",
)
def similar(
    registry: Registry,
    principal: Principal | None,
    namespace: str,
    name: str,
    limit: int = 10,
) -> dict[str, Any]:
    hits = similar_embeddings(registry.engine, principal, namespace, name, limit)
    return {"items": [hit_json(h) for h in hits]}


ROUTES = [similar]


def near_duplicates_json(
    registry: Registry, principal: Principal | None, version: Any
) -> list[dict[str, Any]]:
    """For the publish answer: embeddings the publisher can see that hold (almost) the same
    vectors, so ``hub push`` can say so (issue 10)."""
    threshold = registry.settings.near_duplicate_cosine
    return [hit_json(h) for h in near_duplicates(registry.engine, principal, version, threshold)]
