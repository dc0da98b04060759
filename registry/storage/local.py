"""Blobs in a local directory: the embedded default. Writes go to a unique temp file beside the
target, are fsynced, then renamed into place, so a reader never sees a half-written blob.

A blob's age (for gc's grace period) is its file's mtime; ``put`` of a blob already there
touches it. gc deletes by moving the file aside first and judging its age after the move, so a
``put`` racing it either touched the file before the move (gc sees it young and moves it back)
or found no file after it (and wrote a fresh one): a re-published blob is never lost."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from client.core.errors import NotFound, Unavailable
from client.core.files import TMP_PREFIX, atomic_write

from .base import CHUNK, BlobStore, StoredBlob, verify_digest
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
        try:
            os.utime(path)  # already stored: the same bytes, young again for gc
            return
        except FileNotFoundError:
            pass
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

    def delete_if_older(self, digest: str, cutoff: datetime) -> bool:
        path = self._path(digest)
        # Aside under a temp-file name, which listings skip (see the module docstring).
        aside = path.with_name(f"{TMP_PREFIX}gc-{secrets.token_hex(8)}")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return False
        if _modified(aside.stat()) < cutoff:
            aside.unlink()
            return True
        # Touched by a put before the move: back it goes (if that put found no file and wrote
        # it again meanwhile, the bytes are the same).
        os.replace(aside, path)
        return False

    def sweep_temp_files(self, cutoff: datetime) -> int:
        removed = 0
        for path in (self.root / KEY_PREFIX).glob(f"*/{TMP_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):
                if _modified(path.stat()) < cutoff:
                    path.unlink()
                    removed += 1
        return removed

    def iter_blobs(self) -> Iterator[StoredBlob]:
        base = self.root / KEY_PREFIX
        if not base.is_dir():
            return
        for path in sorted(base.glob("*/*")):
            digest = digest_from_key(path.relative_to(self.root).as_posix())
            if digest is None:
                continue
            try:
                info = path.stat()
            except FileNotFoundError:  # collected or moved aside since the glob
                continue
            if stat.S_ISREG(info.st_mode):
                yield StoredBlob(digest, _modified(info))

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


def _modified(info: os.stat_result) -> datetime:
    return datetime.fromtimestamp(info.st_mtime, UTC)
