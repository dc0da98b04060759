"""The summary-vector table: one row per version and text encoder."""

from __future__ import annotations

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel


class VersionSummary(SQLModel, table=True):
    """The normalised mean of a version's vectors for one encoder, as little-endian float32
    bytes (768 floats for SD1's ``emb_params``; SDXL has a ``clip_l`` and a ``clip_g`` row).
    Written in the publish transaction, so a version is findable by similarity once visible."""

    __tablename__ = "version_summary"

    version_id: int = Field(
        foreign_key="embedding_version.id", primary_key=True, ondelete="CASCADE"
    )
    encoder: str = Field(primary_key=True, max_length=16)
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
