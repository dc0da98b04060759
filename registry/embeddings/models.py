"""Embeddings, their immutable numbered versions, version tags (movable aliases), content tags
and stars."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from registry.accounts.models import utcnow


class Visibility(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


class ConceptType(StrEnum):
    STYLE = "style"
    OBJECT = "object"
    SUBJECT = "subject"
    NEGATIVE = "negative"


# SQLite without AUTOINCREMENT hands the id of a deleted highest row out again; the similarity
# index remembers rows by version and embedding id (and the FTS table is keyed by embedding id),
# so a reused id made a new version invisible to "similar" until a restart. PostgreSQL's
# sequences never reuse ids; on SQLite AUTOINCREMENT keeps the highest id ever handed out in
# sqlite_sequence (migration 0007).
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


class Embedding(SQLModel, table=True):
    # One index per browse sort, ending in id like the keyset cursor: "ORDER BY key DESC, id
    # DESC LIMIT n" walks the index backwards and stops after n visible rows, instead of
    # scanning and sorting the whole table (issue 12: 120 ms at 100k on PostgreSQL).
    __table_args__ = (
        UniqueConstraint("namespace", "name"),
        Index("ix_embedding_downloads_id", "downloads", "id"),
        Index("ix_embedding_stars_id", "stars", "id"),
        Index("ix_embedding_trending_id", "trending", "id"),
        Index("ix_embedding_updated_at_id", "updated_at", "id"),
        NEVER_REUSE_IDS,
    )

    id: int | None = Field(default=None, primary_key=True)
    namespace: str = Field(foreign_key="namespace.name", max_length=64, index=True)
    name: str = Field(max_length=64)
    description: str = Field(default="", max_length=10_000)
    concept_type: str | None = Field(default=None, max_length=16)
    trigger: str | None = Field(default=None, max_length=100)
    license: str | None = Field(default=None, max_length=100)
    visibility: str = Field(default=Visibility.PUBLIC, max_length=8)
    family: str | None = Field(default=None, max_length=8, index=True)
    # The highest version number handed out; bumped with UPDATE ... RETURNING under the row
    # lock, so concurrent publishes get consecutive numbers with no gaps or collisions.
    version_counter: int = 0
    downloads: int = 0
    stars: int = 0
    # A static "hot" score updated on each download/star; keyset-paginable (see search.py).
    trending: float = 0.0
    created_by: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)  # indexed with id (browse sort)


class EmbeddingTag(SQLModel, table=True):
    """Content tags (``anime``, ``brand``…) used for browsing; not version tags."""

    __tablename__ = "embedding_tag"

    embedding_id: int = Field(foreign_key="embedding.id", primary_key=True, ondelete="CASCADE")
    tag: str = Field(primary_key=True, max_length=64, index=True)


class EmbeddingVersion(SQLModel, table=True):
    __tablename__ = "embedding_version"
    __table_args__ = (
        UniqueConstraint("embedding_id", "number"),
        UniqueConstraint("embedding_id", "digest"),
        Index("ix_embedding_version_upload_sha256", "upload_sha256"),
        NEVER_REUSE_IDS,
    )

    id: int | None = Field(default=None, primary_key=True)
    embedding_id: int = Field(foreign_key="embedding.id", index=True, ondelete="CASCADE")
    number: int
    digest: str = Field(max_length=71, index=True)
    size: int
    family: str = Field(max_length=8)
    base_model: str | None = Field(default=None, max_length=200)
    vectors: int
    encoders: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    dtype: str = Field(max_length=8)
    source_format: str = Field(max_length=40)
    upload_sha256: str = Field(max_length=64)
    trigger: str | None = Field(default=None, max_length=100)
    notes: str = Field(default="", max_length=10_000)
    training: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    yanked: bool = False
    created_by: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow)


class VersionTag(SQLModel, table=True):
    """A movable alias (``stable``, ``brand-2025``) pointing at a version number. ``latest`` is
    not stored: it is always the highest non-yanked version."""

    __tablename__ = "version_tag"

    embedding_id: int = Field(foreign_key="embedding.id", primary_key=True, ondelete="CASCADE")
    tag: str = Field(primary_key=True, max_length=64)
    number: int
    updated_at: datetime = Field(default_factory=utcnow)


class Star(SQLModel, table=True):
    user_id: int = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE")
    embedding_id: int = Field(foreign_key="embedding.id", primary_key=True, ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow)


class HashKind(StrEnum):
    """What a :class:`VersionHash` is the sha256 of."""

    DIGEST = "digest"  # the canonical blob the file route serves (= the version's digest)
    CANONICAL = "canonical"  # the canonical file `hub pull` writes (with lexicon.* metadata)
    A1111 = "a1111"
    KOHYA = "kohya"
    DIFFUSERS = "diffusers"  # one row per file (SDXL is a pair)
    UPLOAD = "upload"  # the canonical bytes the publisher uploaded
    ORIGINAL = "original"  # a file the version was pushed from, checked to hold its tensors
    AUTOV3 = "autov3"  # Civitai's AutoV3: sha256 of a safetensors file's body (header skipped)


class VersionHash(SQLModel, table=True):
    """A hash that finds a version (``GET /api/v1/lookup``). Rows are written only for bytes the
    server has seen yield the version's tensors; claimed hashes are never stored (issue 8.6)."""

    __tablename__ = "version_hash"

    version_id: int = Field(
        foreign_key="embedding_version.id", primary_key=True, ondelete="CASCADE"
    )
    kind: str = Field(primary_key=True, max_length=16)
    # Lowercase hex; short-hash lookups are range scans on this index (see hashes.lookup).
    sha256: str = Field(primary_key=True, max_length=64, index=True)
