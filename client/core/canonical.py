"""Canonical form and digest.

The canonical file is safetensors that A1111, ComfyUI and kohya load as they are:
``{"emb_params": [n, d]}`` for one encoder, ``{"clip_l", "clip_g"}`` for SDXL, with our metadata
(``lexicon.*`` keys) in the header. The digest is ``sha256:<hex>`` of the same serialization
*without* metadata, so equal vectors give equal digests whatever name or format they came in.

We write the safetensors bytes ourselves (keys sorted, offsets in key order, compact sorted JSON
header padded to 8 bytes) rather than through the ``safetensors`` package: a digest must not
change when a library changes its layout, and the reader must name each way a header can be
malformed. Tests check that the ``safetensors`` package reads what we write.
"""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np

from .embedding import DTYPES, Embedding, dtype_name
from .errors import BadDtype, InvalidEmbedding, NotCanonical, TooLarge
from .families import get_family

CANONICAL_VERSION = "1"
META_PREFIX = "lexicon."
MAX_HEADER_BYTES = 100_000_000
DEFAULT_MAX_BYTES = 2 * 1024 * 1024  # SDXL x 75 vectors in F32 is 600 KB


def serialize_safetensors(
    tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None
) -> bytes:
    """Deterministic safetensors bytes (little-endian data, sorted keys)."""
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


def looks_like_safetensors(data: bytes) -> bool:
    if len(data) < 10:
        return False
    (n,) = struct.unpack("<Q", data[:8])
    return 2 <= n <= MAX_HEADER_BYTES and data[8:9] == b"{"


def parse_safetensors(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Tensors and metadata of a safetensors file, with a named error for each malformation."""
    if len(data) < 8:
        raise InvalidEmbedding(f"safetensors file is truncated ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise InvalidEmbedding(
            f"safetensors header claims {n} bytes but only {len(data) - 8} follow; "
            "the file is truncated or not safetensors"
        )
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEmbedding(f"safetensors header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise InvalidEmbedding("safetensors header is not a JSON object")
    body = memoryview(data)[8 + n :]
    raw_meta = header.pop("__metadata__", None) or {}
    metadata = {str(k): str(v) for k, v in raw_meta.items()} if isinstance(raw_meta, dict) else {}
    tensors: dict[str, np.ndarray] = {}
    for name, spec in header.items():
        try:
            dtype_str, shape, (start, end) = spec["dtype"], spec["shape"], spec["data_offsets"]
        except (TypeError, KeyError, ValueError):
            raise InvalidEmbedding(f"safetensors entry {name!r} is malformed") from None
        if not (
            isinstance(dtype_str, str)
            and isinstance(shape, list)
            and all(_is_count(v) for v in (*shape, start, end))
        ):
            raise InvalidEmbedding(
                f"safetensors entry {name!r} is malformed (dtype, shape or offsets)"
            )
        if dtype_str not in DTYPES:
            raise BadDtype(
                f"tensor {name!r} is {dtype_str}; use float32 (F32), float16 (F16) or "
                "bfloat16 (BF16)"
            )
        dtype = DTYPES[dtype_str].newbyteorder("<")
        count = int(np.prod(shape)) if shape else 1
        if not (0 <= start <= end <= len(body)) or end - start != count * dtype.itemsize:
            raise InvalidEmbedding(
                f"tensor {name!r} points at bytes {start}..{end} of a {len(body)}-byte body; "
                "the file is truncated or corrupt"
            )
        array = np.frombuffer(body[start:end], dtype=dtype).reshape(shape)
        tensors[name] = array.astype(DTYPES[dtype_str], copy=True)
    return tensors, metadata


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


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
