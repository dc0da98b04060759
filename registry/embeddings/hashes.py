"""Every hash that finds a version, and the by-hash lookup that answers from them.

Why: A1111 records the sha256 of the embedding file on disk (and shows its first 10 hex digits),
Civitai shows the first 10 (AutoV2) or 12 (AutoV3: sha256 of a safetensors file's body, header
skipped). Those are hashes of *files*, and a version has many: each format the registry serves
or ``hub pull`` writes (the renderings are deterministic), the canonical bytes that were
uploaded, and every original file it was pushed from (issue 9.5).

A hash is stored only for bytes the server has seen yield the version's tensors. A claimed
``source_sha256`` is never stored: anyone could claim the hash of someone else's file and be
listed as its source (issue 8.6). An original file therefore travels with the publish and is
read here with the restricted readers (:func:`client.core.formats.read_embedding`, never a
pickle's code), and refused unless it holds the same vectors.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import insert
from sqlmodel import Session, select

from client.core.canonical import looks_like_safetensors, parse_safetensors
from client.core.embedding import Embedding as Vectors
from client.core.errors import BadRequest, OriginalMismatch
from client.core.formats import read_embedding
from client.core.writers import FORMATS, SAFETENSORS, TORCH, embedding_to_bytes
from registry.accounts.access import Principal

from . import search
from .models import Embedding, EmbeddingVersion, HashKind, VersionHash

_HEX = re.compile(r"^[0-9a-f]+$")
MIN_PREFIX = 8
MAX_HITS = 100


@dataclass(frozen=True, order=True)
class FileHash:
    kind: str
    sha256: str


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def autov3(data: bytes) -> str | None:
    """Civitai's AutoV3 of a safetensors file: sha256 of what follows the header, so editing
    metadata does not change it. None for other files."""
    if not looks_like_safetensors(data):
        return None
    (header_len,) = struct.unpack("<Q", data[:8])
    return _sha256(data[8 + header_len :])


def file_hashes(data: bytes, kind: str) -> set[FileHash]:
    """The sha256 of one file as ``kind``, and its AutoV3 when it is safetensors."""
    found = {FileHash(kind, _sha256(data))}
    body = autov3(data)
    if body is not None:
        found.add(FileHash(HashKind.AUTOV3.value, body))
    return found


def served_hashes(blob: bytes, triggers: Iterable[str | None]) -> set[FileHash]:
    """Hashes of every file the hub serves or writes for the canonical ``blob``: the blob itself
    (what ``?format=canonical`` serves) and each format's file(s) in each container the writers
    offer for it (``hub pull --format a1111 -o x.pt`` writes a torch file), rendered by the same
    writers as the file route and ``hub pull`` from the same inputs (the tensors read back from
    the blob, the version's trigger). Several triggers when the route's fallback differs from
    the client's."""
    found = file_hashes(blob, HashKind.DIGEST.value)
    tensors, _ = parse_safetensors(blob)
    for trigger in dict.fromkeys(triggers):
        vectors = Vectors.from_tensors(tensors, token=trigger, source_format="canonical")
        for fmt in FORMATS:
            for container in (SAFETENSORS, TORCH):
                try:
                    files = embedding_to_bytes(vectors, fmt, token=trigger, container=container)
                except BadRequest:  # no such container for this format or family
                    continue
                for content in files.values():
                    found |= file_hashes(content, fmt)
    return found


def verify_original(data: bytes, vectors: Vectors, *, max_bytes: int) -> set[FileHash]:
    """The hashes of an ``original`` file sent with a publish, once it is read (restricted
    readers only) and holds exactly the uploaded vectors; refused otherwise, naming both
    digests, before anything is stored."""
    original = read_embedding(
        data, filename="original file", max_bytes=max_bytes, max_png_bytes=max_bytes
    )
    if original.digest != vectors.digest:
        raise OriginalMismatch(
            f"the original file ({original.source_format}, {original.num_vectors} vectors, "
            f"{original.digest}) does not hold the uploaded vectors ({vectors.digest}); send "
            "the file the upload was converted from"
        )
    return file_hashes(data, HashKind.ORIGINAL.value)


def index_version(
    session: Session, version_id: int, hashes: Iterable[FileHash], *, new: bool = False
) -> None:
    """Add the hashes ``version_id`` does not have yet (a re-push adds its original's; a
    ``new`` version, inserted in this transaction, has none to read)."""
    have: set[FileHash] = set()
    if not new:
        have = {
            FileHash(kind, sha)
            for kind, sha in session.exec(
                select(VersionHash.kind, VersionHash.sha256).where(
                    VersionHash.version_id == version_id
                )
            )
        }
    rows = [
        {"version_id": version_id, "kind": item.kind, "sha256": item.sha256}
        for item in sorted(set(hashes) - have)
    ]
    if rows:  # one INSERT for all of them, no ORM object per row
        session.execute(insert(VersionHash), rows)


@dataclass
class LookupHit:
    embedding: Embedding
    version: EmbeddingVersion
    matched: list[FileHash] = field(default_factory=list)


def parse_hash(value: str) -> str:
    raw = value.strip().lower().removeprefix("sha256:")
    if not _HEX.match(raw) or not MIN_PREFIX <= len(raw) <= 64:
        raise BadRequest(
            "hash must be sha256:<hex>, 64 hex characters, or a short hash of 8-12+ hex "
            "characters (A1111 shows 10, Civitai 10 or 12)"
        )
    return raw


def lookup(session: Session, principal: Principal | None, value: str) -> list[LookupHit]:
    """Versions the caller may see that have a hash equal to ``value`` or starting with it
    (A1111/Civitai short hashes), each with what matched."""
    raw = parse_hash(value)
    if len(raw) == 64:
        cond = VersionHash.sha256 == raw
    else:
        # A range on the sha256 index ('g' follows every hex digit), whatever the collation.
        cond = (
            (VersionHash.sha256 >= raw)
            & (VersionHash.sha256 < raw + "g")
            & VersionHash.sha256.startswith(raw)
        )
    stmt = (
        select(Embedding, EmbeddingVersion, VersionHash.kind, VersionHash.sha256)
        .join(EmbeddingVersion, EmbeddingVersion.embedding_id == Embedding.id)
        .join(VersionHash, VersionHash.version_id == EmbeddingVersion.id)
        .where(cond)
        .order_by(Embedding.namespace, Embedding.name, EmbeddingVersion.number, VersionHash.kind)
        .limit(MAX_HITS * len(HashKind))
    )
    visible = search.visible_filter(principal)
    if visible is not None:
        stmt = stmt.where(visible)
    hits: dict[int, LookupHit] = {}
    for embedding, version, kind, sha in session.exec(stmt).all():
        hit = hits.setdefault(version.id, LookupHit(embedding, version))
        hit.matched.append(FileHash(kind, sha))
    return list(hits.values())[:MAX_HITS]
