"""Downloads: resolve, count, then either redirect to a presigned storage URL (S3, canonical
bytes) or return the bytes (local store, or a converted format)."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from client.core.canonical import parse_safetensors
from client.core.embedding import Embedding as Vectors
from client.core.writers import check_format, embedding_to_bytes
from registry.accounts.access import Principal
from registry.context import Registry
from registry.db import read_scope, session_scope

from . import reads, services


@dataclass
class DownloadPlan:
    digest: str
    filename: str
    redirect_url: str | None = None
    content: bytes = b""
    media_type: str = "application/octet-stream"


def plan_download(
    registry: Registry, principal: Principal | None, ns: str, name: str, ref: str, fmt: str
) -> DownloadPlan:
    check_format(fmt)
    with read_scope(registry.engine) as session:  # Core rows: no ORM objects for a read
        conn = session.connection()
        embedding = reads.embedding_row(conn, principal, ns, name)
        version = reads.version_row(conn, embedding, ref)
        trigger = version.trigger or embedding.trigger or f"<{name}>"
    with session_scope(registry.engine) as session:
        services.count_download(session, embedding.id)
    filename = f"{name}-v{version.number}.safetensors"
    if fmt == "canonical":
        url = registry.store.presigned_url(
            version.digest, filename=filename, expires_s=registry.settings.presign_seconds
        )
        if url:
            return DownloadPlan(version.digest, filename, redirect_url=url)
        return DownloadPlan(version.digest, filename, content=registry.store.get(version.digest))
    tensors, _ = parse_safetensors(registry.store.get(version.digest))
    vectors = Vectors.from_tensors(tensors, token=trigger, source_format="canonical")
    return render(vectors, fmt, name, version.number)


def render(vectors: Vectors, fmt: str, name: str, number: int) -> DownloadPlan:
    """A converted file; SDXL in diffusers format is its two-file pair, zipped."""
    files = embedding_to_bytes(vectors, fmt)
    stem = f"{name}-v{number}"
    if len(files) == 1:
        (content,) = files.values()
        return DownloadPlan(vectors.digest, f"{stem}-{fmt}.safetensors", content=content)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for filename, content in files.items():
            archive.writestr(filename, content)
    return DownloadPlan(
        vectors.digest,
        f"{stem}-{fmt}.zip",
        content=buffer.getvalue(),
        media_type="application/zip",
    )
