"""Every table, imported in one place so ``SQLModel.metadata`` is complete for alembic."""

from registry.accounts.models import ApiToken, Membership, Namespace, Org, User
from registry.embeddings.models import Embedding, EmbeddingTag, EmbeddingVersion, Star, VersionTag
from registry.similarity.models import VersionSummary
from registry.training.models import TrainingJob, TrainingWorker

__all__ = [
    "ApiToken",
    "Embedding",
    "EmbeddingTag",
    "EmbeddingVersion",
    "Membership",
    "Namespace",
    "Org",
    "Star",
    "TrainingJob",
    "TrainingWorker",
    "User",
    "VersionSummary",
    "VersionTag",
]
