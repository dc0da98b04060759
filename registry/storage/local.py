"""Blobs in a local directory: the embedded default. Writes go to a unique temp file beside the
target, are fsynced, then renamed into place, so a reader never sees a half-written blob."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from client.core.errors import NotFound, Unavailable
from client.core.files import TMP_PREFIX, atomic_write

from .base import CHUNK, BlobStore, verify_digest
from .keys import KEY_PREFIX, blob_key, digest_from_key


class LocalBlobStore(BlobStore):
    """Content-addressed files under ``root`` using the layout drawn in ``keys.py``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, digest: str) -> Path:
        return self.root / blob_key(digest)

    def put(self, digest: str, data: bytes) -> None:
        path = self._path(digest)
        verify_digest(digest, data)  # before anything touches the disk
        if path.exists():
            return
        atomic_write(path, data)

    def exists(self, digest: str) -> bool:
        return self._path(digest).is_file()

    def _open(self, digest: str) -> BinaryIO:
        try:
            return self._path(digest).open("rb")
        except FileNotFoundError:
            raise NotFound(f"Blob {digest} is not in the store.") from None

    def get(self, digest: str) -> bytes:
        with self._open(digest) as f:
            return f.read()

    def open_stream(self, digest: str) -> Iterator[bytes]:
        f = self._open(digest)  # NotFound now, not at the first next()

        def chunks() -> Iterator[bytes]:
            with f:
                while chunk := f.read(CHUNK):
                    yield chunk

        return chunks()

    def size(self, digest: str) -> int:
        try:
            return self._path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"Blob {digest} is not in the store.") from None

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(digest).unlink()

    def iter_digests(self) -> Iterator[str]:
        base = self.root / KEY_PREFIX
        if not base.is_dir():
            return
        for path in sorted(base.glob("*/*")):
            digest = digest_from_key(path.relative_to(self.root).as_posix())
            if digest is not None and path.is_file():
                yield digest

    def presigned_url(self, digest: str, *, filename: str | None, expires_s: int) -> str | None:
        blob_key(digest)  # still validate: a bad digest is a bad request everywhere
        return None

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=self.root)
            os.close(fd)
            os.unlink(tmp)
        except OSError as exc:
            raise Unavailable(
                f"Blob directory {self.root} is not writable ({exc.strerror}); "
                "fix its permissions or set LEXICON_BLOB_DIR."
            ) from exc
