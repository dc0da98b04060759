"""Canonical form and digest.

The canonical file is safetensors that A1111, ComfyUI and kohya load as they are:
``{"emb_params": [n, d]}`` for one encoder, ``{"clip_l", "clip_g"}`` for SDXL, with our metadata
(``lexicon.*`` keys) in the header. The digest is ``sha256:<hex>`` of the same serialization
*without* metadata, so equal vectors give equal digests whatever name or format they came in.

We write the safetensors bytes ourselves (keys sorted, offsets in key order, compact sorted JSON
header padded to 8 bytes) rather than through the ``safetensors`` package: a digest must not
change when a library changes its layout. Reading goes through the strict reader
(:mod:`client.core.safetensors_reader`), which names each way a file can be malformed. Tests
check that the ``safetensors`` package reads what we write.
"""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np

from .embedding import Embedding, dtype_name
from .errors import InvalidEmbedding, NotCanonical, TooLarge
from .families import get_family
from .safetensors_reader import (
    MAX_HEADER_BYTES,
    looks_like_safetensors,
    parse_safetensors,
    text_problem,
)

__all__ = [
    "MAX_HEADER_BYTES",
    "canonical_bytes",
    "embedding_digest",
    "looks_like_safetensors",
    "parse_canonical",
    "parse_safetensors",
    "serialize_safetensors",
]

CANONICAL_VERSION = "1"
META_PREFIX = "lexicon."
DEFAULT_MAX_BYTES = 2 * 1024 * 1024  # SDXL x 75 vectors in F32 is 600 KB


def serialize_safetensors(
    tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None
) -> bytes:
    """Deterministic safetensors bytes (little-endian data, sorted keys). Names and metadata
    the strict reader would refuse (NUL, lone surrogates) are refused here, before writing."""
    _check_header_text(tensors, metadata or {})
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in sorted(metadata.items())}
    chunks: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        raw = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {
            "dtype": dtype_name(array),
            "shape": [int(s) for s in array.shape],
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(chunks)


def _check_header_text(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    texts = [(f"tensor name {n!r}", n) for n in tensors]
    texts += [(f"metadata {k!r}", str(k)) for k in metadata]
    texts += [(f"metadata {k!r} = {str(v)!r}", str(v)) for k, v in metadata.items()]
    for what, text in texts:
        problem = text_problem(text)
        if problem:
            raise InvalidEmbedding(
                f"{what} holds {problem}, which a safetensors file cannot carry; re-save the "
                "source with a plain-text token"
            )


def embedding_digest(embedding: Embedding) -> str:
    return "sha256:" + hashlib.sha256(serialize_safetensors(embedding.vectors)).hexdigest()


def canonical_metadata(embedding: Embedding) -> dict[str, str]:
    meta = {
        f"{META_PREFIX}format": CANONICAL_VERSION,
        f"{META_PREFIX}family": embedding.family.name,
        f"{META_PREFIX}source_format": embedding.source_format,
    }
    if embedding.token:
        meta[f"{META_PREFIX}token"] = embedding.token
    return meta


def canonical_bytes(embedding: Embedding) -> bytes:
    return serialize_safetensors(embedding.vectors, canonical_metadata(embedding))


def parse_canonical(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Embedding:
    """Strict reader for uploads: canonical safetensors only (``emb_params`` or
    ``clip_l`` + ``clip_g``), no torch, no pickle."""
    if len(data) > max_bytes:
        raise TooLarge(f"upload is {len(data)} bytes; the limit is {max_bytes}")
    if not looks_like_safetensors(data):
        raise NotCanonical(
            "upload is not safetensors; convert it with `hub convert IN OUT --to canonical` "
            "or upload through `hub push`"
        )
    tensors, metadata = parse_safetensors(data)
    keys = set(tensors)
    if keys not in ({"emb_params"}, {"clip_l", "clip_g"}):
        raise NotCanonical(
            f"upload holds tensors {sorted(keys)}; canonical files hold exactly 'emb_params' "
            "or 'clip_l' + 'clip_g' (convert with `hub convert IN OUT --to canonical`)"
        )
    embedding = Embedding.from_tensors(
        tensors,
        token=metadata.get(f"{META_PREFIX}token"),
        source_format=metadata.get(f"{META_PREFIX}source_format", "canonical"),
    )
    declared = metadata.get(f"{META_PREFIX}family")
    if declared and get_family(declared).name != embedding.family.name:
        raise InvalidEmbedding(
            f"header says family {declared!r} but the vectors are {embedding.family.describe()}"
        )
    return embedding
