"""Every table, imported in one place so ``SQLModel.metadata`` is complete for alembic."""

from registry.accounts.models import ApiToken, Membership, Namespace, Org, User
from registry.embeddings.models import Embedding, EmbeddingTag, EmbeddingVersion, Star, VersionTag

__all__ = [
    "ApiToken",
    "Embedding",
    "EmbeddingTag",
    "EmbeddingVersion",
    "Membership",
    "Namespace",
    "Org",
    "Star",
    "User",
    "VersionTag",
]
