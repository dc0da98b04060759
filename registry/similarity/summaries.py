"""Summary vectors: what is stored per version, and how a family's encoders combine into one
unit vector whose dot products are cosine scores."""

from __future__ import annotations

import numpy as np
from sqlalchemy import insert
from sqlmodel import Session, select

from client.core.embedding import Embedding as Vectors
from client.core.families import FAMILIES

from .models import VersionSummary

DTYPE = np.dtype("<f4")


def encoder_summaries(vectors: Vectors) -> dict[str, np.ndarray]:
    """Per encoder, the mean of the embedding's vectors scaled to unit length: one fixed-size
    vector whatever the vector count, so a 1-vector and a 16-vector embedding compare."""
    out = {}
    for encoder, array in vectors.vectors.items():
        mean = np.asarray(array, dtype=np.float32).mean(axis=0)
        norm = float(np.linalg.norm(mean))
        out[encoder] = (mean / norm if norm > 0 else mean).astype(DTYPE)
    return out


def combined(family: str, per_encoder: dict[str, np.ndarray]) -> np.ndarray | None:
    """The family's encoders concatenated, each scaled by 1/sqrt(count): a unit vector whose
    dot product with another is the mean of the per-encoder cosines (SDXL: clip_l and clip_g
    count equally). None when an encoder is missing."""
    encoders = FAMILIES[family].encoders
    if any(e not in per_encoder for e in encoders):
        return None
    scale = np.float32(1.0 / np.sqrt(len(encoders)))
    return np.concatenate([per_encoder[e] * scale for e in encoders]).astype(np.float32)


def store_summaries(session: Session, version_id: int, vectors: Vectors) -> None:
    """Called once per new version, inside the publish transaction (one INSERT)."""
    rows = [
        {"version_id": version_id, "encoder": encoder, "vector": summary.tobytes()}
        for encoder, summary in encoder_summaries(vectors).items()
    ]
    session.execute(insert(VersionSummary), rows)


def load_combined(session: Session, version_id: int, family: str) -> np.ndarray | None:
    rows = session.exec(select(VersionSummary).where(VersionSummary.version_id == version_id))
    return combined(family, {r.encoder: np.frombuffer(r.vector, DTYPE) for r in rows})
