"""The blob-store interface the registry's services talk to. Adapters translate their driver's
errors into ``client.core.errors`` so nothing above them sees botocore or OSError."""

from __future__ import annotations

import hashlib
import hmac
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from client.core.errors import DigestMismatch

from .keys import parse_digest

CHUNK = 64 * 1024


def verify_digest(digest: str, data: bytes) -> None:
    """Raise DigestMismatch unless ``data`` hashes to ``digest``, before anything is stored."""
    expected = parse_digest(digest)
    actual = hashlib.sha256(data).hexdigest()
    if not hmac.compare_digest(expected, actual):
        raise DigestMismatch(
            f"Blob bytes hash to sha256:{actual}, not {digest}; nothing was stored. "
            "Re-send the exact bytes the digest was computed from."
        )


@dataclass(frozen=True)
class StoredBlob:
    """A listed blob and when it was last written (or re-``put``); gc's grace period reads
    ``modified``, so a backend rounds it *up* when its clock is coarse."""

    digest: str
    modified: datetime  # timezone-aware UTC


class BlobStore(ABC):
    """Content-addressed, immutable blobs keyed by ``sha256:<hex>`` (see ``keys.blob_key``)."""

    @abstractmethod
    def put(self, digest: str, data: bytes) -> None:
        """Store ``data`` under ``digest`` after verifying it. An existing blob keeps its bytes
        but becomes young again (its ``modified`` time is now): a publish whose bytes are an
        old orphan must not lose them to a gc running before its row commits.

        Raises DigestMismatch (leaving nothing behind) when the bytes do not match."""

    @abstractmethod
    def exists(self, digest: str) -> bool: ...

    @abstractmethod
    def get(self, digest: str) -> bytes:
        """The blob's bytes; raises NotFound."""

    @abstractmethod
    def open_stream(self, digest: str) -> Iterator[bytes]:
        """The blob in chunks, for streaming responses; raises NotFound before the first chunk."""

    @abstractmethod
    def size(self, digest: str) -> int:
        """Size in bytes; raises NotFound."""

    @abstractmethod
    def delete(self, digest: str) -> None:
        """Remove the blob; deleting a missing blob is a no-op."""

    @abstractmethod
    def delete_if_older(self, digest: str, cutoff: datetime) -> bool:
        """Garbage collection's delete: remove the blob only if it was last written before
        ``cutoff``, judged at the moment of deleting (a ``put`` since the listing keeps it).
        True when it was removed."""

    @abstractmethod
    def iter_blobs(self) -> Iterator[StoredBlob]:
        """Every stored blob with its last-modified time, for garbage collection."""

    def sweep_temp_files(self, cutoff: datetime) -> int:
        """Remove partial writes left by a crash, if last written before ``cutoff``; how many.
        Nothing to do for S3, whose PUTs are atomic."""
        return 0

    def iter_digests(self) -> Iterator[str]:
        """Every stored blob's digest."""
        return (blob.digest for blob in self.iter_blobs())

    @abstractmethod
    def presigned_url(self, digest: str, *, filename: str | None, expires_s: int) -> str | None:
        """A time-limited direct download URL, or None when the store cannot make one."""

    @abstractmethod
    def check(self) -> None:
        """Readiness probe; raises Unavailable with the cause."""
