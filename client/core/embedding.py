"""The in-memory embedding every format reads into and writes from, validated on construction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ml_dtypes
import numpy as np

from .errors import BadDtype, BadShape, InvalidEmbedding, NonFiniteValues
from .families import MAX_VECTORS, Family, family_for_widths

# safetensors dtype names <-> numpy dtypes. bfloat16 comes from ml_dtypes (numpy has none).
DTYPES: dict[str, np.dtype] = {
    "F32": np.dtype(np.float32),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16),
}
DTYPE_NAMES: dict[np.dtype, str] = {v: k for k, v in DTYPES.items()}


def dtype_name(array: np.ndarray) -> str:
    try:
        return DTYPE_NAMES[array.dtype]
    except KeyError:
        raise BadDtype(
            f"tensor dtype {array.dtype} is not supported; use float32, float16 or bfloat16"
        ) from None


@dataclass(frozen=True)
class Embedding:
    """Vectors per text encoder (``emb_params`` for SD1/SD2, ``clip_l`` + ``clip_g`` for SDXL),
    each ``[n, width]``, plus what the source file said about them."""

    vectors: dict[str, np.ndarray]
    family: Family
    token: str | None = None
    source_format: str = "canonical"
    info: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_tensors(
        cls,
        tensors: dict[str, np.ndarray],
        *,
        token: str | None = None,
        source_format: str,
        info: dict[str, str] | None = None,
    ) -> Embedding:
        """Validate raw tensors keyed by encoder name; 1-D tensors are one vector."""
        if not tensors:
            raise InvalidEmbedding("the file holds no tensors")
        vectors: dict[str, np.ndarray] = {}
        for name, array in tensors.items():
            array = np.asarray(array)
            if array.ndim == 1:
                array = array.reshape(1, -1)
            if array.ndim != 2:
                raise BadShape(
                    f"tensor {name!r} has shape {list(array.shape)}; "
                    "an embedding is [vectors, width]"
                )
            dtype_name(array)
            vectors[name] = np.ascontiguousarray(array)
        dtypes = {dtype_name(a) for a in vectors.values()}
        if len(dtypes) > 1:
            raise BadDtype(f"encoders mix dtypes {sorted(dtypes)}; save all in one dtype")
        family = family_for_widths({k: int(v.shape[1]) for k, v in vectors.items()})
        counts = {int(v.shape[0]) for v in vectors.values()}
        if len(counts) > 1:
            raise BadShape(
                "the encoders hold different numbers of vectors "
                f"({', '.join(f'{k}={v.shape[0]}' for k, v in vectors.items())}); "
                "SDXL embeddings pair one clip_l and one clip_g vector per token"
            )
        count = counts.pop()
        if not 1 <= count <= MAX_VECTORS:
            raise BadShape(
                f"{count} vectors; an embedding has 1-{MAX_VECTORS} "
                "(they must fit the text encoder's 77-token context)"
            )
        for name, array in vectors.items():
            if not np.isfinite(array.astype(np.float32)).all():
                raise NonFiniteValues(f"tensor {name!r} holds NaN or infinite values")
        ordered = {k: vectors[k] for k in family.encoders}
        return cls(ordered, family, token or None, source_format, dict(info or {}))

    @property
    def num_vectors(self) -> int:
        return int(next(iter(self.vectors.values())).shape[0])

    @property
    def dtype(self) -> str:
        return dtype_name(next(iter(self.vectors.values())))

    @property
    def encoders(self) -> dict[str, list[int]]:
        return {k: [int(s) for s in v.shape] for k, v in self.vectors.items()}

    @property
    def digest(self) -> str:
        from .canonical import embedding_digest

        return embedding_digest(self)

    def with_token(self, token: str | None) -> Embedding:
        return Embedding(self.vectors, self.family, token, self.source_format, dict(self.info))


MAX_SOURCE_STEPS = 10_000_000  # the registry's bound on training.steps


def training_from_source(embedding: Embedding) -> dict[str, Any] | None:
    """What an A1111 file says about its training, in the registry's ``training`` keys:
    ``trainer``, ``steps`` and ``name``, A1111's internal name. The trigger is the file name
    (A1111 and ComfyUI key files by it, issue 9.3), so the internal name is kept here, where
    ``hub info`` shows it beside the trigger. None for files that say nothing."""
    name = embedding.info.get("name")
    if embedding.source_format != "a1111-pt" or not name:
        return None
    training: dict[str, Any] = {"trainer": "a1111", "name": name[:200]}
    step = embedding.info.get("step", "")
    if step.isdigit() and int(step) <= MAX_SOURCE_STEPS:
        training["steps"] = int(step)
    return training
